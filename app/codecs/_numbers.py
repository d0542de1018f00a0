"""Read JSON nested arrays of numbers straight into NumPy with simdjson.

The typed path builds a Python number per element and NumPy then walks the lists; simdjson
parses into its own tape and copies the numbers out in C++, several times faster. Its
``as_buffer`` checks less than the typed path, so the rest is checked here, and anything
unusual returns None: the typed path then decodes the array and words any error.

- ``as_buffer`` flattens whatever nesting it meets, so every array above the leaves must
  have the length of the first one at its depth, and the caller checks that the text
  holds no other ``[`` (a numeric array has no strings to hide one in).
- Reading as int64 succeeds only when every element is an integer in range: labels
  stay integers, as the typed path keeps them. Otherwise the elements are read as
  doubles, which turns integers into floats as NumPy would, silently also those past
  int64; the typed path refuses those, so an array holding a magnitude >= 2**63 goes
  there to find out.
- simdjson parses numbers correctly rounded (Lemire's algorithm), as msgspec does, and
  agrees with it on -0 (the integer 0) and on underflow (to a signed zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import chain
from typing import Any, TypeVar

import numpy as np
import simdjson

from app.codecs._arrays import MAX_RANK

__all__ = [
    "acquire",
    "count_brackets",
    "numeric_array",
    "parse_document",
    "read_numbers",
    "release",
]

# A parser must not be shared between threads, and keeps the buffers of the largest
# document it has read (about 3.4x its size). One idle parser is kept: a new one costs
# little for a small body, but a large one pays the page faults of its fresh buffers
# (bench/README.md, design decisions). Only after documents up to the default body
# limit, though, so that an idle worker holds at most about 220 MB of parser buffers
# whatever limit it is configured with.
T = TypeVar("T")
_IDLE: list[simdjson.Parser] = []
KEEP_AFTER_BYTES = 64 << 20
_ARRAY = {simdjson.Array}
_INT64_LIMIT = 2.0**63


def acquire() -> simdjson.Parser:
    """A parser no other thread uses."""
    try:
        return _IDLE.pop()
    except IndexError:
        return simdjson.Parser()


def release(parser: simdjson.Parser, parsed: int) -> None:
    """Offer ``parser``, which read ``parsed`` bytes, for reuse; no proxy into it may be alive."""
    if not _IDLE and parsed <= KEEP_AFTER_BYTES:
        _IDLE.append(parser)


_COUNT_STEP = 1 << 20


def count_brackets(text: bytes | memoryview) -> int:
    """How many ``[`` the text holds.

    ``bytes.count`` tests a byte at a time; NumPy compares 1 MiB at a time into one
    reused mask, which pays off from about 64 KiB (bench/README.md, design decisions).
    """
    if len(text) < 1 << 16:
        return bytes(text).count(b"[") if isinstance(text, memoryview) else text.count(b"[")
    codes = np.frombuffer(text, np.uint8)
    mask = np.empty(min(len(codes), _COUNT_STEP), bool)
    total = 0
    for start in range(0, len(codes), _COUNT_STEP):
        part = codes[start : start + _COUNT_STEP]
        found = mask[: len(part)]
        np.equal(part, 0x5B, out=found)
        total += int(np.count_nonzero(found))
    return total


def parse_document(body: bytes, read: Callable[[Any], T | None]) -> T | None:
    """``read`` applied to the top-level object of one simdjson parse of ``body``, or None.

    None when ``body`` is not JSON, or not an object, or ``read`` declines it. ``read``
    must not keep proxies into the document: they die with the parse.
    """
    parser = acquire()
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError):  # not JSON, or an integer past 64 bits
        release(parser, len(body))
        return None
    found = read(document) if isinstance(document, simdjson.Object) else None
    del document
    release(parser, len(body))  # not after an exception in read: see read_numbers
    return found


def read_numbers(raw: memoryview) -> np.ndarray[Any, np.dtype[Any]] | None:
    """int64 or float64 array from a rectangular JSON array of numbers, else None."""
    if not raw or raw[0] != ord("["):
        return None  # null or a tensor: msgspec's Raw starts at the value itself
    parser = acquire()
    array = _read(parser, raw)
    # The proxies into the document are gone now. After an exception a traceback may
    # still hold one, and the parser would refuse to parse again: it is not kept then.
    release(parser, len(raw))
    return array


def _read(parser: simdjson.Parser, raw: memoryview) -> np.ndarray[Any, np.dtype[Any]] | None:
    try:
        document = parser.parse(raw)
    except (ValueError, RuntimeError):  # not JSON, or an integer past 64 bits
        return None
    found = numeric_array(document)
    if found is None:
        return None
    array, arrays = found
    # A surplus '[' is an array where a number should be.
    return array if count_brackets(raw) == arrays else None


def numeric_array(element: Any) -> tuple[np.ndarray[Any, np.dtype[Any]], int] | None:
    """The array, and how many '[' its text must hold, or None; see the module docstring."""
    if not isinstance(element, simdjson.Array):
        return None
    shape = [len(element)]
    level: list[Any] = [element]
    first: Any = None
    while shape[-1] and isinstance(first := level[0][0], simdjson.Array):
        if len(shape) == MAX_RANK:
            return None
        level = list(chain.from_iterable(level))
        if set(map(type, level)) != _ARRAY:
            return None
        lengths = set(map(len, level))
        if len(lengths) != 1:
            return None
        shape.append(lengths.pop())
    size = math.prod(shape)
    if not size:
        return None  # empty: float64 by the typed path's rule, and cheap there
    flat = _flat(element, type(first) is float)
    if flat is None or flat.size != size:
        return None
    arrays = sum(math.prod(shape[:depth]) for depth in range(len(shape)))
    return flat.reshape(shape), arrays


def _flat(element: Any, floats: bool) -> np.ndarray[Any, np.dtype[Any]] | None:
    # A failed int64 read costs as much as a double one (a C++ exception): when the
    # first element is a float, the array is float64 anyway.
    if not floats:
        try:
            return np.frombuffer(element.as_buffer(of_type="i"), np.int64)
        except TypeError:  # a float further on, or something that is no number at all
            pass
        except (ValueError, RuntimeError):  # an integer past int64
            return None
    try:
        flat = np.frombuffer(element.as_buffer(of_type="d"), np.float64)
    except (TypeError, ValueError, RuntimeError):
        return None
    # JSON has no literal for NaN or infinity, so this is only about integers past int64.
    # Two reductions, not abs(): no temporary the size of the array.
    return flat if flat.min() > -_INT64_LIMIT and flat.max() < _INT64_LIMIT else None
