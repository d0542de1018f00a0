"""Decode a plain JSON body with one simdjson parse.

The general path reads a big array twice: msgspec splits the top level, then the array
is parsed on its own. A plain body needs one parse: an object with distinct keys, whose
array fields hold nested arrays of numbers (or null) and whose options are scalars or
flat lists of scalars. Anything else returns None, and the general path decodes the body
and words any error.

simdjson and msgspec agree on what is JSON (bar a leading UTF-8 byte-order mark, which
simdjson skips) and on the values of scalars; simdjson refuses integers past uint64,
which msgspec reads, so those bodies take the general path too.
"""

from __future__ import annotations

from typing import Any

import simdjson

from app.codecs._numbers import acquire, count_brackets, numeric_array, release
from app.codecs.base import DecodedArray, DecodedBody

__all__ = ["decode_plain"]

_BOM = b"\xef\xbb\xbf"
_SCALARS = (str, int, float, bool, type(None))


def decode_plain(body: bytes, array_fields: frozenset[str]) -> DecodedBody | None:
    """The decoded body when it is plain, else None."""
    # A '{' past the first byte is most likely a tensor (a plain body has no objects):
    # memchr finds it sooner than a parse of its base64 string would fail (bench/README.md).
    if body.startswith(_BOM) or body.find(b"{", 1) != -1:
        return None
    parser = acquire()
    decoded = _decode(parser, body, array_fields)
    release(parser, len(body))  # not after an exception: see read_numbers
    return decoded


def _decode(
    parser: simdjson.Parser, body: bytes, array_fields: frozenset[str]
) -> DecodedBody | None:
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError):
        return None
    if not isinstance(document, simdjson.Object):
        return None
    names = list(document)
    if len(set(names)) != len(names):
        return None  # a key given twice
    options: dict[str, Any] = {}
    arrays: dict[str, DecodedArray] = {}
    # Every '[' in the body must open an array counted here: one in a string would make
    # the count meaningless, and a surplus is an array where a number should be.
    opened = 0
    for name in names:
        if "[" in name:
            return None
        value = document[name]  # items() would convert arrays to lists
        if name in array_fields and value is not None:
            found = numeric_array(value)
            if found is None:
                return None
            arrays[name], opened = DecodedArray(found[0], False), opened + found[1]
        elif isinstance(value, simdjson.Array):
            items = value.as_list()
            if not all(_plain(item) for item in items):
                return None
            options[name], opened = items, opened + 1
        elif _plain(value):
            options[name] = value
        else:
            return None
    return DecodedBody(options, arrays) if count_brackets(body) == opened else None


def _plain(value: Any) -> bool:
    return isinstance(value, _SCALARS) and not (isinstance(value, str) and "[" in value)
