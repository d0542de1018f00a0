"""At most ``max_in_flight`` requests per worker; the next one gets 503 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.security import reject

__all__ = ["InFlightLimit"]


class InFlightLimit:
    """Refuse rather than queue: a queued request holds its body in memory and waits anyway.

    Counts per worker process (each has its own event loop); probes are never refused.
    """

    def __init__(self, app: ASGIApp, *, limit: int, exempt_paths: Iterable[str]) -> None:
        self.app = app
        self.limit = limit
        self.exempt = frozenset(exempt_paths)
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            await reject(
                scope,
                receive,
                send,
                HTTPStatus.SERVICE_UNAVAILABLE,
                "overloaded",
                f"this worker is serving {self.limit} requests; retry shortly",
            )
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
