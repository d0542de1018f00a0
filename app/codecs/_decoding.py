"""The decode flow both media types share: top-level object, options, arrays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import numpy as np

from app.codecs._arrays import array_from_raw
from app.codecs._duplicates import duplicate_key
from app.codecs._tensors import in_body, tensor_from_raw
from app.codecs.base import DecodedArray, DecodedBody, invalid_utf8
from app.codecs.errors import Loc, MalformedBody, OptionOutOfRange

__all__ = ["Kind", "Syntax", "decode_body"]

Kind = Literal["null", "tensor", "array"]


@dataclass(frozen=True)
class Syntax:
    """What differs between JSON and msgpack when decoding."""

    name: str
    fields: Callable[[bytes], dict[str, msgspec.Raw]]
    plain: Callable[[msgspec.Raw], Any]
    decode_as: Callable[[Any], Callable[[Any], Any]]
    # Looks at the first bytes of a value: null, a tensor object, or nested lists and their rank.
    peek: Callable[[memoryview], tuple[Kind, int]]
    # Optional bulk reader for a common layout; returns None to fall back to the typed path
    # (always for null, tensors and more than MAX_RANK levels).
    fast_array: Callable[[memoryview], np.ndarray[Any, np.dtype[Any]] | None] | None = None
    # Optional reader for a whole plain body; returns None to fall back to the steps above.
    fast_body: Callable[[bytes, frozenset[str]], DecodedBody | None] | None = None


def decode_body(body: bytes, array_fields: frozenset[str], syntax: Syntax) -> DecodedBody:
    """Split a top-level object into plain options and NumPy arrays."""
    if not body:
        raise MalformedBody(f"empty {syntax.name} body")
    if syntax.fast_body is not None and (decoded := syntax.fast_body(body, array_fields)):
        return decoded
    try:
        fields = syntax.fields(body)
    except msgspec.ValidationError as exc:
        raise MalformedBody(
            f"{syntax.name} body must be an object with string keys: {exc}"
        ) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _undecodable(exc, body, syntax) from exc
    if (duplicate := duplicate_key(body, fields, syntax.name)) is not None:
        raise duplicate
    options: dict[str, Any] = {}
    arrays: dict[str, DecodedArray] = {}
    try:
        for name, raw in fields.items():
            if name not in array_fields:
                options[name] = _option(raw, name, syntax)
                continue
            view = memoryview(raw)
            # The bulk reader declines null, tensors and ranks past MAX_RANK itself.
            if syntax.fast_array is not None and (array := syntax.fast_array(view)) is not None:
                arrays[name] = DecodedArray(array, False)
                continue
            kind, rank = syntax.peek(view)
            if kind == "null":
                options[name] = None
            elif kind == "tensor":
                tensor = tensor_from_raw(raw, name, syntax.decode_as)
                arrays[name] = DecodedArray(in_body(tensor, body), True)
            else:
                array = array_from_raw(raw, name, rank, syntax.decode_as)
                arrays[name] = DecodedArray(array, False)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # The top level split the body into raw values; a value's own strings (keys of a
        # nested object too) are checked only when msgspec builds them, here.
        raise _undecodable(exc, body, syntax, (name,)) from exc
    return DecodedBody(options, arrays)


def _option(raw: msgspec.Raw, name: str, syntax: Syntax) -> Any:
    try:
        return syntax.plain(raw)
    except msgspec.ValidationError as exc:  # e.g. 1e999: valid JSON, no float64 for it
        raise OptionOutOfRange(f"{name}: {str(exc).lower()}", (name,)) from exc


def _undecodable(
    exc: msgspec.DecodeError | UnicodeDecodeError, body: bytes, syntax: Syntax, loc: Loc = ()
) -> MalformedBody:
    """The error for a body (or its field ``loc``) that msgspec could not decode.

    msgspec raises UnicodeDecodeError for invalid UTF-8 in a string up to 0.22 and
    DecodeError from 0.23 on, without saying where. A JSON text is UTF-8 throughout
    (RFC 8259), so for JSON the first bad byte of the body is found and its offset given;
    msgpack carries binary data too, so there only the field is named.
    """
    where = f"{loc[0]}: " if loc else ""
    found = invalid_utf8(body) if syntax.name == "JSON" else None
    if found is None and isinstance(exc, UnicodeDecodeError):
        found = f"{exc.object[exc.start : exc.end]!r}: {exc.reason}"
    if found is None:
        part = "value" if loc else "body"
        return MalformedBody(f"{where}invalid {syntax.name} {part}: {exc}", loc)
    return MalformedBody(f"{where}invalid UTF-8 in a {syntax.name} string {found}", loc)
