"""Turn msgspec validation errors into a ``loc`` path and a readable message."""

from __future__ import annotations

import re

import msgspec

from app.codecs.errors import Loc

__all__ = ["render", "split"]

# msgspec appends the failing path as " - at `$[0][1]`" or " - at `$.shape[2]`".
_AT = re.compile(r"^(?P<detail>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_STEP = re.compile(r"\[(\d+)\]|\.([^.\[]+)")


def split(exc: msgspec.ValidationError) -> tuple[str, Loc]:
    """Return msgspec's message without its path, and the path as a ``loc`` tuple."""
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any string
    path = match["path"] or ""
    loc: Loc = tuple(int(index) if index else name for index, name in _STEP.findall(path))
    return match["detail"], loc


def render(loc: Loc) -> str:
    """``("logits", 0, 1)`` -> ``logits[0][1]``; ``("w", "shape", 1)`` -> ``w.shape[1]``."""
    head, *rest = loc
    return str(head) + "".join(
        f"[{step}]" if isinstance(step, int) else f".{step}" for step in rest
    )
