"""Exceptions of the client: the server's problem details, connection failures, timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ErrorItem",
    "MissingDependency",
    "ScoringAPIError",
    "ScoringClientError",
    "ScoringConnectionError",
    "ScoringTimeout",
]


class ScoringClientError(Exception):
    """Base of every error the client raises."""


@dataclass(frozen=True)
class ErrorItem:
    """One entry of the server's error list: where (``loc``) and what."""

    loc: tuple[str | int, ...]
    message: str
    type: str


class ScoringAPIError(ScoringClientError):
    """The server answered with an error status; ``errors`` is its list of problems."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[ErrorItem],
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.body = body

    @classmethod
    def from_problem(cls, status: int, problem: Any, fallback: str) -> ScoringAPIError:
        """From an RFC 9457 body; anything else (a proxy's HTML page) keeps ``fallback``."""
        if not isinstance(problem, dict):
            return cls(status, "Error", fallback or f"HTTP {status}", [], problem)
        items = [
            ErrorItem(
                tuple(item.get("loc", ())), str(item.get("message", "")), str(item.get("type", ""))
            )
            for item in problem.get("errors") or ()
            if isinstance(item, dict)
        ]
        title = str(problem.get("title", "Error"))
        detail = str(problem.get("detail", problem.get("error", fallback)))
        return cls(status, title, detail, items, problem)


class ScoringConnectionError(ScoringClientError):
    """The server could not be reached, or kept answering 503, after every retry."""


class ScoringTimeout(ScoringClientError):
    """The server did not answer within the timeout."""


class MissingDependency(ImportError):
    """A file format or the report needs an optional dependency that is not installed."""
