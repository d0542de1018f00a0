"""Readiness: false while starting, true once warm, false again from SIGTERM on."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from fastapi import FastAPI

__all__ = ["Companion", "Readiness", "lifespan_for"]


@dataclass
class Readiness:
    """Whether this worker should be sent new requests."""

    started: bool = False
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining


class Companion(Protocol):
    """A server that runs beside the application in its worker (the gRPC server)."""

    async def start(self) -> object: ...

    async def stop(self) -> None: ...


def _chain_sigterm(readiness: Readiness, drain_seconds: float) -> Callable[[], None]:
    """Flip readiness on SIGTERM, then hand the signal to the server's own handler.

    uvicorn installs its handler before the lifespan starts; we wrap it so that the
    server still drains requests in flight exactly as it would have. With a drain
    delay the handover waits, so a balancer polling /readyz can take us out first.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: FrameType | None) -> None:
        readiness.draining = True
        if callable(previous):
            if drain_seconds > 0:
                loop.call_later(drain_seconds, previous, signum, frame)
            else:
                previous(signum, frame)

    signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)

    return restore


def lifespan_for(
    readiness: Readiness,
    drain_seconds: float,
    warm_up: Callable[[], Any],
    companions: Sequence[Companion] = (),
) -> Callable[[FastAPI], Any]:
    """A lifespan that warms the numerical path, then reports ready until shutdown.

    ``companions`` start after the warm-up (a failure fails the startup) and stop last,
    once uvicorn has finished the requests in flight.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warm_up()
        started: list[Companion] = []
        try:
            for companion in companions:
                await companion.start()
                started.append(companion)
            restore = _chain_sigterm(readiness, drain_seconds)
            readiness.started = True
            try:
                yield
            finally:
                readiness.draining = True
                restore()
        finally:
            for companion in reversed(started):
                await companion.stop()

    return lifespan
