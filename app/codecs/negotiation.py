"""Pick a codec from Content-Type and Accept (RFC 9110 sections 8.3 and 12.5.1)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from app.codecs.base import Codec
from app.codecs.errors import NotAcceptable, UnsupportedMediaType
from app.codecs.json import JSON
from app.codecs.msgpack import MSGPACK

__all__ = [
    "CODECS",
    "MEDIA_TYPES",
    "codec_for_accept",
    "codec_for_content_type",
]

CODECS: Mapping[str, Codec] = MappingProxyType({JSON.media_type: JSON, MSGPACK.media_type: MSGPACK})
"""The canonical media type of each codec."""

# Every name a codec answers to, in both headers. The problem type counts as JSON so a
# client that asks for error bodies by name still gets a JSON success body.
MEDIA_TYPES: Mapping[str, Codec] = MappingProxyType(
    {
        "application/json": JSON,
        "application/problem+json": JSON,
        "application/msgpack": MSGPACK,
        "application/x-msgpack": MSGPACK,
        "application/vnd.msgpack": MSGPACK,
    }
)
_SUPPORTED = tuple(MEDIA_TYPES)


# Clients send the same few header values over and over; parsing Accept costs a small
# request several microseconds. Bounded: the values are the client's choice.
@functools.lru_cache(maxsize=256)
def codec_for_content_type(value: str | None) -> Codec:
    """The codec for a Content-Type; parameters are ignored and a missing header means JSON."""
    if value is None or not value.strip():
        return JSON
    media_type = value.split(";", 1)[0].strip().lower()
    codec = MEDIA_TYPES.get(media_type)
    if codec is not None:
        return codec
    if media_type.endswith("+json"):
        return JSON
    raise UnsupportedMediaType(value, _SUPPORTED)


def codec_for_accept(value: str | None, default: Codec) -> Codec:
    """The codec Accept prefers: highest q, ties go to ``default`` (the request's codec)."""
    return _codec_for_accept(value, default.media_type)


@functools.lru_cache(maxsize=256)
def _codec_for_accept(value: str | None, default_media_type: str) -> Codec:
    default = CODECS[default_media_type]
    if value is None or not value.strip():
        return default
    ranges = [parsed for part in value.split(",") if (parsed := _media_range(part))]
    if not ranges:  # only malformed entries: behave as if the header were absent
        return default
    candidates = [default, *(codec for codec in CODECS.values() if codec is not default)]
    best, best_q = None, 0.0
    for codec in candidates:
        q = _quality(codec, ranges)
        if q > best_q:  # strict, so an equal q never displaces the default
            best, best_q = codec, q
    if best is None:
        raise NotAcceptable(value, _SUPPORTED)
    return best


def _media_range(part: str) -> tuple[str, str, float] | None:
    kind, *params = (piece.strip() for piece in part.split(";"))
    kind = kind.lower()
    if kind == "*":  # some clients (Java's URLConnection) send a bare "*"
        kind = "*/*"
    main, slash, sub = kind.partition("/")
    if not (main and slash and sub):
        return None
    q = 1.0
    for param in params:
        name, _, raw = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(raw)
            except ValueError:
                return None
            if not 0.0 <= q <= 1.0:
                return None
            break  # anything after q is an accept-ext
    return main, sub, q


def _quality(codec: Codec, ranges: list[tuple[str, str, float]]) -> float:
    # The most specific matching range decides; several equally specific ones: the best q.
    names = [name.split("/") for name, owner in MEDIA_TYPES.items() if owner is codec]
    best_rank, best_q = 0, 0.0
    for main, sub, q in ranges:
        for name_main, name_sub in names:
            if (main, sub) == (name_main, name_sub):
                rank = 3
            elif (main, sub) == (name_main, "*"):
                rank = 2
            elif (main, sub) == ("*", "*"):
                rank = 1
            else:
                continue
            if rank > best_rank or (rank == best_rank and q > best_q):
                best_rank, best_q = rank, q
    return best_q
