"""The one error of the metrics: an aggregate that is malformed or does not merge."""

from __future__ import annotations

__all__ = ["InvalidAggregate"]

Loc = tuple[str | int, ...]


class InvalidAggregate(ValueError):
    """An aggregate (or merged metrics) that cannot be read or added; ``loc`` says where.

    ``loc`` is the path of the offending field (``("aggregates", 3, "calibration")``); the
    service answers it as a 422 of type ``invalid_value``.
    """

    problem_type = "invalid_value"

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
