"""Codecs: request bodies to options and NumPy arrays, response trees to bytes.

Depends on NumPy, msgspec, orjson and the standard library only; the web layer maps
:class:`MalformedBody` to 400, :class:`InvalidArray` to 422, :class:`UnsupportedMediaType`
to 415 and :class:`NotAcceptable` to 406.
"""

from collections.abc import Mapping
from typing import Any

from app.codecs.base import (
    Buffer,
    Codec,
    CodecError,
    DecodedArray,
    DecodedBody,
    Decoder,
    InvalidArray,
    MalformedBody,
    ReadAhead,
    Tensor,
    invalid_utf8,
)
from app.codecs.json import JSON, JsonCodec
from app.codecs.msgpack import MSGPACK, MsgpackCodec
from app.codecs.negotiation import (
    CODECS,
    MEDIA_TYPES,
    NotAcceptable,
    UnsupportedMediaType,
    codec_for_accept,
    codec_for_content_type,
)

__all__ = [
    "CODECS",
    "JSON",
    "MEDIA_TYPES",
    "MSGPACK",
    "Buffer",
    "Codec",
    "CodecError",
    "DecodedArray",
    "DecodedBody",
    "Decoder",
    "InvalidArray",
    "JsonCodec",
    "MalformedBody",
    "MsgpackCodec",
    "NotAcceptable",
    "ReadAhead",
    "Tensor",
    "UnsupportedMediaType",
    "codec_for_accept",
    "codec_for_content_type",
    "encode_parts",
    "invalid_utf8",
    "reader_for",
]


def encode_parts(codec: Codec, content: Mapping[str, Any]) -> list[Buffer]:
    """``codec.encode(content)`` as pieces to send one after the other (see msgpack)."""
    split = getattr(codec, "encode_parts", None)
    return split(content) if split is not None else [codec.encode(content)]


# Below this size the body comes in a few chunks and there is little to overlap.
READ_AHEAD_BYTES = 4 << 20


def reader_for(codec: Codec, array_fields: frozenset[str], size: int) -> ReadAhead | None:
    """A decoder that reads ahead while a body of ``size`` bytes arrives, or None.

    Only a codec with a ``reader`` (JSON) has one, and only a large body needs one.
    """
    make = getattr(codec, "reader", None)
    if make is None or size < READ_AHEAD_BYTES:
        return None
    reader: ReadAhead = make(array_fields)
    return reader
