"""What one request did, filled in by the layers it passes through."""

from __future__ import annotations

__all__ = ["STATS_KEY", "RequestStats"]

# The ASGI scope key under which the middleware leaves a request's RequestStats.
STATS_KEY = "scorer.stats"


class RequestStats:
    """Stage timings (seconds), batch size and the error type of one request.

    Stages not reached stay None; ``error`` is the problem type of a 4xx/5xx answer, or
    why an answer was not delivered; ``undelivered`` is how many of the response's bytes
    never reached the kernel (None: all of them did, or the server cannot tell).
    """

    __slots__ = (
        "classes",
        "compute",
        "decode",
        "encode",
        "error",
        "request_id",
        "samples",
        "undelivered",
    )

    def __init__(self, request_id: str = "") -> None:
        self.request_id = request_id
        self.decode: float | None = None
        self.compute: float | None = None
        self.encode: float | None = None
        self.samples: int | None = None
        self.classes: int | None = None
        self.error: str | None = None
        self.undelivered: int | None = None
