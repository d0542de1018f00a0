"""Walk a response tree, rebuilding containers and rewriting the leaves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["convert"]


def convert(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """Copy dicts and lists (tuples become lists) with ``leaf`` applied to everything else."""
    if isinstance(value, Mapping):
        return {key: convert(item, leaf) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [convert(item, leaf) for item in value]
    return leaf(value)
