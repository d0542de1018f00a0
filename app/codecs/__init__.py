"""Codecs: request bodies to options and NumPy arrays, response trees to bytes.

Depends on NumPy, msgspec, orjson and the standard library only; the web layer maps
each error of :mod:`app.codecs.errors` to its status (``app.api.errors``).
"""

from collections.abc import Mapping
from typing import Any

from app.codecs._numbers import count_brackets, numeric_array, parse_document, read_numbers
from app.codecs.base import (
    Buffer,
    Codec,
    DecodedArray,
    DecodedBody,
    Decoder,
    ReadAhead,
    Tensor,
    invalid_utf8,
)
from app.codecs.errors import (
    CodecError,
    DecompressedTooLarge,
    InvalidArray,
    MalformedBody,
    NotAcceptable,
    UnsupportedEncoding,
    UnsupportedMediaType,
)
from app.codecs.inflate import inflate, is_identity
from app.codecs.json import JSON, JsonCodec
from app.codecs.msgpack import MSGPACK, MsgpackCodec
from app.codecs.negotiation import (
    CODECS,
    MEDIA_TYPES,
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
    "DecompressedTooLarge",
    "InvalidArray",
    "JsonCodec",
    "MalformedBody",
    "MsgpackCodec",
    "NotAcceptable",
    "ReadAhead",
    "Tensor",
    "UnsupportedEncoding",
    "UnsupportedMediaType",
    "codec_for_accept",
    "codec_for_content_type",
    "count_brackets",
    "encode_parts",
    "inflate",
    "invalid_utf8",
    "is_identity",
    "numeric_array",
    "parse_document",
    "read_numbers",
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
