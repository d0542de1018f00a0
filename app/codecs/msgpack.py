"""msgpack codec: native floats (non-finite included), tensors as bin, arrays packed in bulk."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import numpy as np

from app.codecs._decoding import Kind, Syntax, decode_body
from app.codecs._packing import pack_array
from app.codecs._tensors import tensor_bytes
from app.codecs._unpacking import array_header as _array_header
from app.codecs._unpacking import unpack_numbers
from app.codecs.base import Buffer, DecodedBody, Tensor

__all__ = ["MSGPACK", "MsgpackCodec"]


@functools.cache
def _decode_as(kind: Any) -> Callable[[Any], Any]:
    return msgspec.msgpack.Decoder(kind).decode


def _peek(raw: memoryview) -> tuple[Kind, int]:
    rank, at = 0, 0
    while (header := _array_header(raw, at)) is not None:
        size, length = header
        rank, at = rank + 1, at + size
        if not length:
            break
    if rank:
        return "array", rank
    byte = raw[0]
    if 0x80 <= byte <= 0x8F or byte in (0xDE, 0xDF):  # fixmap, map 16, map 32
        return "tensor", 0
    return ("null", 0) if byte == 0xC0 else ("array", 0)


_SYNTAX = Syntax(
    name="msgpack",
    fields=msgspec.msgpack.Decoder(dict[str, msgspec.Raw]).decode,
    plain=msgspec.msgpack.Decoder().decode,
    decode_as=_decode_as,
    peek=_peek,
    fast_array=unpack_numbers,
)


class MsgpackCodec:
    """``application/msgpack``; floats are native, so non-finite values need no convention."""

    media_type = "application/msgpack"
    problem_media_type = "application/msgpack"

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        """Decode a msgpack map; fields in ``array_fields`` become NumPy arrays."""
        return decode_body(body, array_fields, _SYNTAX)

    def encode(self, content: Mapping[str, Any]) -> bytes:
        """Encode with msgspec; arrays as nested arrays, tensors as bin."""
        return _ENCODER.encode(content)

    def encode_parts(self, content: Mapping[str, Any]) -> list[Buffer]:
        """``encode(content)`` in pieces, the bytes of big top-level tensors not copied.

        Copying a large tensor into the body is a pass over all of its bytes
        (bench/README.md, design decisions). Each tensor of at least 1 MiB is encoded as
        its bin header followed by a marker; the body is cut at the markers and the
        tensor's own bytes (a view of the array) go in between. The pieces join to exactly
        what ``encode`` returns.
        """
        spliced: list[memoryview] = []
        tree: dict[str, Any] | None = None
        for name, value in content.items():
            if type(value) is Tensor and _SPLICE_BYTES <= value.array.nbytes < 2**32:
                dtype, data = tensor_bytes(value.array)
                tree = tree if tree is not None else dict(content)
                marker = _MARKER + len(spliced).to_bytes(4, "big")
                header = _bin_header(data.nbytes)
                tree[name] = {
                    "dtype": dtype,
                    "shape": list(value.array.shape),
                    "data": msgspec.Raw(header + marker),
                }
                spliced.append(data.data)
        if tree is None:
            return [_ENCODER.encode(content)]
        encoded = _ENCODER.encode(tree)
        view = memoryview(encoded)
        parts: list[Buffer] = []
        at = 0
        for index, piece in enumerate(spliced):
            marker = _MARKER + index.to_bytes(4, "big")
            found = encoded.find(marker, at)
            parts += [view[at:found], piece]
            at = found + len(marker)
        parts.append(view[at:])
        return parts


def _bin_header(size: int) -> bytes:
    """The header msgspec writes before ``size`` bytes: the smallest of bin 8, 16, 32."""
    if size < 1 << 8:
        return b"\xc4" + size.to_bytes(1, "big")
    if size < 1 << 16:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")


def _leaf(value: Any) -> Any:
    """What msgspec does not encode itself: arrays, NumPy scalars, tensors, str subclasses."""
    if isinstance(value, np.ndarray):
        packed = pack_array(value)
        return value.tolist() if packed is None else msgspec.Raw(packed.data)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Tensor):
        name, data = tensor_bytes(value.array)
        return {"dtype": name, "shape": list(value.array.shape), "data": data.data}
    if isinstance(value, str):  # msgspec refuses str subclasses (np.str_ among them)
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as msgpack")


# Floats, including NaN and infinities, are native msgpack: the tree needs no walk, and
# the hook sees only the leaves msgspec does not know (bench/README.md, design decisions).
_ENCODER = msgspec.msgpack.Encoder(enc_hook=_leaf)
_SPLICE_BYTES = 1 << 20
# Random per process: no body can hold it by chance (2**-128), nor by a client's design.
_MARKER = os.urandom(16)


MSGPACK = MsgpackCodec()
