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
from app.codecs._tree import convert
from app.codecs.base import DecodedBody, Tensor

__all__ = ["MSGPACK", "MsgpackCodec"]


@functools.cache
def _decode_as(kind: Any) -> Callable[[Any], Any]:
    return msgspec.msgpack.Decoder(kind).decode


def _peek(raw: memoryview) -> tuple[Kind, int]:
    rank, at = 0, 0
    while True:
        byte = raw[at]
        if 0x90 <= byte <= 0x9F:  # fixarray
            length, at = byte & 0x0F, at + 1
        elif byte == 0xDC:  # array 16
            length, at = int.from_bytes(raw[at + 1 : at + 3], "big"), at + 3
        elif byte == 0xDD:  # array 32
            length, at = int.from_bytes(raw[at + 1 : at + 5], "big"), at + 5
        else:
            break
        rank += 1
        if not length:
            return "array", rank
    if rank:
        return "array", rank
    if 0x80 <= byte <= 0x8F or byte in (0xDE, 0xDF):  # fixmap, map 16, map 32
        return "tensor", 0
    return ("null", 0) if byte == 0xC0 else ("array", 0)


_SYNTAX = Syntax(
    name="msgpack",
    fields=msgspec.msgpack.Decoder(dict[str, msgspec.Raw]).decode,
    plain=msgspec.msgpack.Decoder().decode,
    decode_as=_decode_as,
    peek=_peek,
)
_ENCODER = msgspec.msgpack.Encoder()


class MsgpackCodec:
    """``application/msgpack``; floats are native, so non-finite values need no convention."""

    media_type = "application/msgpack"
    problem_media_type = "application/msgpack"

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        """Decode a msgpack map; fields in ``array_fields`` become NumPy arrays."""
        return decode_body(body, array_fields, _SYNTAX)

    def encode(self, content: Mapping[str, Any]) -> bytes:
        """Encode with msgspec; arrays as nested arrays, tensors as bin."""
        return _ENCODER.encode(convert(content, _leaf))


def _leaf(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        packed = pack_array(value)
        return convert(value.tolist(), _leaf) if packed is None else msgspec.Raw(packed)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Tensor):
        name, data = tensor_bytes(value.array)
        return {"dtype": name, "shape": list(value.array.shape), "data": data.data}
    return value


MSGPACK = MsgpackCodec()
