"""msgpack codec: native floats (non-finite included), tensors as bin, arrays packed in bulk."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import numpy as np

from app.codecs._decoding import Kind, Syntax, decode_body
from app.codecs._packing import pack_array
from app.codecs._tensors import tensor_bytes
from app.codecs._unpacking import array_header as _array_header
from app.codecs._unpacking import unpack_numbers
from app.codecs.base import DecodedBody, Tensor

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
# the hook sees only the leaves msgspec does not know (a [64, 10] response: 22 -> 5 us).
_ENCODER = msgspec.msgpack.Encoder(enc_hook=_leaf)


MSGPACK = MsgpackCodec()
