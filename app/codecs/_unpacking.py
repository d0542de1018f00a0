"""Read msgpack nested arrays of same-width floats straight into NumPy.

msgspec and msgpack-python write every Python float as 0xcb + 8 bytes, so a float64
matrix sent as lists has a fixed layout: array headers, then tag + payload per element.
When the bytes match that layout exactly, a few vectorised checks and one copy replace a
Python float object per element (bench/README.md, design decisions). Anything else
returns None and takes the general path, which also produces the error messages.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import numpy as np

from app.codecs._arrays import MAX_RANK

__all__ = ["array_header", "unpack_floats", "unpack_numbers"]

_FORMS: dict[int, np.dtype[Any]] = {0xCB: np.dtype(">f8"), 0xCA: np.dtype(">f4")}
# fixints, then uint 8-64 and int 8-64: any width may follow, so no fixed layout.
_INT_TAGS = frozenset((*range(0x80), *range(0xE0, 0x100), *range(0xCC, 0xD4)))
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


def unpack_numbers(raw: memoryview) -> np.ndarray[Any, np.dtype[Any]] | None:
    """float64 or int64 array, by the first element, from nested msgpack arrays, else None."""
    layout = _layout(raw)
    if layout is None:
        return None
    tag = raw[layout[2]]
    if tag in _FORMS:
        return _floats(raw, *layout, _FORMS[tag])
    if tag in _INT_TAGS:
        return _ints(raw, len(layout[0]))
    return None


def unpack_floats(raw: memoryview) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """float64 array from uniform nested msgpack arrays of one float width, else None."""
    layout = _layout(raw)
    form = None if layout is None else _FORMS.get(raw[layout[2]])
    return None if layout is None or form is None else _floats(raw, *layout, form)


def _layout(raw: memoryview) -> tuple[list[int], list[bytes], int] | None:
    # The first element at each depth gives the shape and the header every row must repeat.
    shape: list[int] = []
    heads: list[bytes] = []
    at = 0
    while (header := array_header(raw, at)) is not None:
        size, length = header
        if not length or len(shape) == MAX_RANK:
            return None  # empty arrays are cheap either way; too deep is an error there
        shape.append(length)
        heads.append(bytes(raw[at : at + size]))
        at += size
    return (shape, heads, at) if shape else None


def _floats(
    raw: memoryview, shape: list[int], heads: list[bytes], at: int, form: np.dtype[Any]
) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    # steps[d]: bytes from one element at depth d to the next, the same for every row.
    steps = [1 + form.itemsize]
    for length, head in zip(shape[:0:-1], heads[:0:-1], strict=True):
        steps.insert(0, len(head) + length * steps[0])
    if len(heads[0]) + shape[0] * steps[0] != len(raw):
        return None
    # Strided views over the body check every row header and every tag without a copy.
    offset = len(heads[0])
    for depth in range(1, len(shape)):
        if not _all_equal(raw, heads[depth], offset, shape[:depth], steps[:depth]):
            return None
        offset += len(heads[depth])
    if not _all_equal(raw, bytes(raw[at : at + 1]), offset, shape, steps):
        return None
    payload = np.ndarray(shape, form, raw, offset + 1, steps)
    return payload.astype(np.float64)


def _all_equal(
    raw: memoryview, expected: bytes, offset: int, shape: list[int], steps: list[int]
) -> bool:
    cells = np.ndarray((*shape, len(expected)), np.uint8, raw, offset, (*steps, 1))
    # Comparing bytes beats an elementwise == and .all() at every size (bench/README.md).
    return cells.tobytes() == expected * math.prod(shape)


def _ints(raw: memoryview, rank: int) -> np.ndarray[Any, np.dtype[np.int64]] | None:
    # Integers have no fixed width, so no layout to check; but a decoder typed for int64
    # alone, and NumPy told the dtype, skip the element union and the type inference of
    # the general path (bench/README.md, design decisions).
    try:
        return np.array(_int_decoder(rank)(raw), dtype=np.int64)
    except (msgspec.ValidationError, ValueError):  # a non-integer, or ragged
        return None


@functools.cache
def _int_decoder(rank: int) -> Callable[[Any], Any]:
    kind: Any = _Int64
    for _ in range(rank):
        kind = list[kind]
    return msgspec.msgpack.Decoder(kind).decode


def array_header(raw: memoryview, at: int) -> tuple[int, int] | None:
    """(header size, length) of the msgpack array header at ``at``, or None if none is there."""
    byte = raw[at]
    if 0x90 <= byte <= 0x9F:
        return 1, byte & 0x0F
    if byte == 0xDC:
        return 3, int.from_bytes(raw[at + 1 : at + 3], "big")
    if byte == 0xDD:
        return 5, int.from_bytes(raw[at + 1 : at + 5], "big")
    return None
