"""Codecs: request bodies to options and NumPy arrays, response trees to bytes.

Depends on NumPy, msgspec, orjson and the standard library only; the web layer maps
:class:`MalformedBody` to 400, :class:`InvalidArray` to 422, :class:`UnsupportedMediaType`
to 415 and :class:`NotAcceptable` to 406.
"""

from app.codecs.base import (
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
]
