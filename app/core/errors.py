"""Errors raised by the numerical core.

Each carries ``loc``, the path of the offending input (``("logits", 3, 7)``), so that
the web layer can say what and where without parsing messages. No HTTP codes here.
"""

from __future__ import annotations

__all__ = [
    "InvalidLabel",
    "InvalidOption",
    "InvalidShape",
    "InvalidValue",
    "NonFiniteInput",
    "ScoringError",
    "ZeroTotalWeight",
]

Loc = tuple[str | int, ...]


class ScoringError(ValueError):
    """Input that the mathematics cannot score; ``loc`` says where."""

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


class InvalidShape(ScoringError):
    """Shapes that do not fit together (labels vs logits, weights vs classes)."""


class InvalidValue(ScoringError):
    """A value outside its domain (negative weight, probability above 1, ...)."""


class NonFiniteInput(ScoringError):
    """NaN or +inf where the policy requires finite numbers."""


class InvalidLabel(ScoringError):
    """Class-index labels that are not integers in ``[0, C)``."""


class InvalidOption(ScoringError):
    """An option value or a combination of options that has no meaning."""


class ZeroTotalWeight(ScoringError):
    """A mean over zero total weight: every label ignored, or weights summing to 0."""
