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
    InvalidArray,
    MalformedBody,
    Tensor,
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
    "InvalidArray",
    "JsonCodec",
    "MalformedBody",
    "MsgpackCodec",
    "NotAcceptable",
    "Tensor",
    "UnsupportedMediaType",
    "codec_for_accept",
    "codec_for_content_type",
    "encode_parts",
]


def encode_parts(codec: Codec, content: Mapping[str, Any]) -> list[Buffer]:
    """``codec.encode(content)`` as pieces to send one after the other (see msgpack)."""
    split = getattr(codec, "encode_parts", None)
    return split(content) if split is not None else [codec.encode(content)]
