"""Walk a response tree, rebuilding containers and rewriting the leaves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["convert"]

# Leaves both wire formats take as they are; checked by exact type first because response
# trees can hold thousands of them (per-sample lists) and isinstance on ABCs is slow.
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})


def convert(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """Copy dicts and lists (tuples become lists) with ``leaf`` applied to everything else."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is float:
        return leaf(value)
    if kind is list or kind is tuple:
        return [convert(item, leaf) for item in value]
    if kind is dict or isinstance(value, Mapping):
        return {key: convert(item, leaf) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [convert(item, leaf) for item in value]
    return leaf(value)
