"""Duplicate top-level keys: msgspec keeps the last value silently; we refuse the body.

The check costs no second parse. Each decoded value is a ``msgspec.Raw`` view into the
body, so the bytes between consecutive values must hold exactly one key (and ``:``, ``,``
or whitespace). A dropped duplicate leaves a whole ``key: value`` pair in such a gap.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from app.codecs.errors import DuplicateKey

__all__ = ["duplicate_key"]

_JSON_KEY = msgspec.json.Decoder(str)
_MSGPACK_KEY = msgspec.msgpack.Decoder(str)


def duplicate_key(body: bytes, fields: dict[str, msgspec.Raw], syntax: str) -> DuplicateKey | None:
    """The error for the first key that occurs twice at the top level, or None."""
    if syntax == "msgpack":
        count = _msgpack_map_length(body)
        if count is None or count == len(fields):
            return None
    elif len(body) - _json_lower_bound(fields) < _SMALLEST_JSON_ENTRY:
        return None  # compact JSON: no room left for a dropped `"k":0,`
    base = _address(body)
    spans = sorted((_address(raw) - base, len(raw)) for raw in fields.values())
    if spans and not (spans[0][0] > 0 and sum(spans[-1]) <= len(body)):
        return None  # not views into this body (never seen from msgspec; be safe)
    edges = [(0, 0), *spans]
    for (start, length), (after, _) in zip(edges[:-1], spans, strict=True):
        gap = body[start + length : after]
        key = _json_gap_key(gap) if syntax == "JSON" else _msgpack_gap_key(gap, start == 0)
        if key is not None:
            return DuplicateKey(f"{key}: the key is given more than once", (key,))
    return None


_SMALLEST_JSON_ENTRY = len('"":0,')


def _json_lower_bound(fields: dict[str, msgspec.Raw]) -> int:
    # Bytes the kept entries need at least: `{`, `"key":value` each, commas, `}`.
    return 1 + sum(len(key) + 3 + len(raw) for key, raw in fields.items()) + len(fields)


def _address(buffer: Any) -> int:
    return int(np.frombuffer(buffer, np.uint8).__array_interface__["data"][0])


def _json_gap_key(gap: bytes) -> str | None:
    # A clean gap is `{ "key" :` or `, "key" :`; anything more starts with a dropped key.
    inner = gap.strip().lstrip(b"{,").rstrip(b":").strip()
    try:
        _JSON_KEY.decode(inner)
    except msgspec.DecodeError:
        end = inner.find(b'"', 1)
        while end > 0 and inner[end - 1] == 0x5C:  # an escaped quote inside the key
            end = inner.find(b'"', end + 1)
        try:
            return _JSON_KEY.decode(inner[: end + 1])
        except msgspec.DecodeError:
            return "?"
    return None


def _msgpack_gap_key(gap: bytes, first: bool) -> str | None:
    # A clean gap is the key alone (after the map header before the first value).
    if first:
        gap = gap[_msgpack_header_size(gap) :]
    try:
        _MSGPACK_KEY.decode(gap)
    except msgspec.DecodeError:
        size = _msgpack_str_size(gap)
        try:
            return _MSGPACK_KEY.decode(gap[:size]) if size else "?"
        except msgspec.DecodeError:
            return "?"
    return None


def _msgpack_header_size(body: bytes) -> int:
    return {0xDE: 3, 0xDF: 5}.get(body[0], 1) if body else 0


def _msgpack_map_length(body: bytes) -> int | None:
    tag = body[0]
    if 0x80 <= tag <= 0x8F:
        return tag & 0x0F
    if tag in (0xDE, 0xDF):
        return int.from_bytes(body[1 : _msgpack_header_size(body)], "big")
    return None


def _msgpack_str_size(gap: bytes) -> int:
    tag = gap[0] if gap else 0
    if 0xA0 <= tag <= 0xBF:
        return 1 + (tag & 0x1F)
    width = {0xD9: 1, 0xDA: 2, 0xDB: 4}.get(tag)
    if width is None:
        return 0
    return 1 + width + int.from_bytes(gap[1 : 1 + width], "big")
