"""Nested lists of numbers -> NumPy arrays, with the exact path of the first bad element."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from app.codecs._locations import render, split
from app.codecs.errors import InvalidArray, Loc

__all__ = ["MAX_RANK", "array_from_raw", "nested_type"]

# NumPy allows 64 dimensions; no scoring input needs more than a handful, and the cap keeps
# a body of 10_000 '[' from building a 10_000-deep decoder type.
MAX_RANK = 32

_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# JSON has no literal for non-finite floats, so both media types accept these strings.
_Element = _Int64 | float | Literal["inf", "-inf", "nan"]

_DETAILS = {
    "Expected `int | float | str`, got `array`": "expected a number, got a nested array",
    "Expected `int | float | str`, got": "expected a number, got",
    "Expected `array`, got": "expected a nested array, got",
    "Expected `int` <=": "integer out of int64 range",
    "Expected `int` >=": "integer out of int64 range",
    "Number out of range": "number out of float64 range",
    "Invalid enum value": 'the only strings allowed are "inf", "-inf" and "nan"; got',
}


@functools.cache
def nested_type(rank: int) -> Any:
    """``list[list[...Element]]`` with ``rank`` levels of lists."""
    kind: Any = _Element
    for _ in range(rank):
        kind = list[kind]
    return kind


def array_from_raw(
    raw: msgspec.Raw, field: str, rank: int, decode_as: Callable[[Any], Callable[[Any], Any]]
) -> np.ndarray[Any, np.dtype[Any]]:
    """Decode ``raw`` (nested lists ``rank`` deep) to int64 or float64, else raise InvalidArray."""
    if rank > MAX_RANK:
        raise InvalidArray(f"{field}: more than {MAX_RANK} nested levels", (field,))
    try:
        value = decode_as(nested_type(rank))(raw)
    except msgspec.ValidationError as exc:
        raise _element_error(exc, field) from exc
    try:
        # Any float makes the array float64: when the first element is one, say so up
        # front, which spares NumPy a type-inference pass (a third of the time).
        array = np.array(value, dtype=np.float64) if _first_is_float(value) else np.array(value)
    except ValueError as exc:
        raise _ragged_error(value, field) from exc
    if array.dtype.kind == "U":
        # Inference saw "inf"/"nan" strings; NumPy parses them when asked for floats.
        return np.array(value, dtype=np.float64)
    # Integers stay integers (labels); any float makes the array float64, [] is float64.
    return array.astype(np.int64 if array.dtype.kind == "i" else np.float64, copy=False)


def _first_is_float(value: Any) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, float)


def _element_error(exc: msgspec.ValidationError, field: str) -> InvalidArray:
    detail, path = split(exc)
    for prefix, readable in _DETAILS.items():
        if detail.startswith(prefix):
            # Keep what msgspec says was found ("got bool", "got 'abc'"), drop its type syntax.
            found = detail[len(prefix) :].replace("`", "")
            detail = readable + found if readable.endswith("got") else readable
            break
    loc: Loc = (field, *path)
    return InvalidArray(f"{render(loc)}: {detail}", loc)


def _ragged_error(value: list[Any], field: str) -> InvalidArray:
    # The lengths along the first element at each depth are the shape every row must have.
    lengths: list[int] = []
    node: Any = value
    while isinstance(node, list):
        lengths.append(len(node))
        node = node[0] if node else None
    path = _first_mismatch(value, lengths, ())
    if path is None:  # pragma: no cover - NumPy raised for a reason we did not foresee
        return InvalidArray(f"{field}: not a rectangular numeric array", (field,))
    loc: Loc = (field, *path)
    reference: Loc = (field, *(0,) * len(path))
    return InvalidArray(
        f"{render(loc)}: ragged array: length {_length(value, path)} differs from "
        f"length {lengths[len(path)]} of {render(reference)}",
        loc,
    )


def _first_mismatch(
    node: list[Any], lengths: list[int], path: tuple[int, ...]
) -> tuple[int, ...] | None:
    if len(node) != lengths[len(path)]:
        return path
    if len(path) + 1 < len(lengths):
        for index, child in enumerate(node):
            found = _first_mismatch(child, lengths, (*path, index))
            if found is not None:
                return found
    return None


def _length(value: list[Any], path: tuple[int, ...]) -> int:
    for index in path:
        value = value[index]
    return len(value)
