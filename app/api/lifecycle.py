"""Readiness: false while starting, true once warm, false again from SIGTERM on."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from fastapi import FastAPI

__all__ = ["Readiness", "lifespan_for"]


@dataclass
class Readiness:
    """Whether this worker should be sent new requests."""

    started: bool = False
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.started and not self.draining


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
    readiness: Readiness, drain_seconds: float, warm_up: Callable[[], Any]
) -> Callable[[FastAPI], Any]:
    """A lifespan that warms the numerical path, then reports ready until shutdown."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warm_up()
        restore = _chain_sigterm(readiness, drain_seconds)
        readiness.started = True
        try:
            yield
        finally:
            readiness.draining = True
            restore()

    return lifespan
