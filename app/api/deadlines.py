"""Request deadlines enforced by one timer per event loop, not one timer per request.

``asyncio.timeout`` arms a timer for each request and disarms it at the end, which
costs a small request a measurable share of its time under uvloop (bench/README.md,
design decisions). Here a request only
registers its task and deadline in a dict. One timer, armed at the earliest deadline,
cancels every task whose deadline has passed and re-arms itself for the next one; as
every request has the same timeout, a later request never needs an earlier timer, so
under load the timer fires about once per timeout instead of being armed per request.

Cancellation follows ``asyncio.timeout``: the task is cancelled, and the cancellation
becomes TimeoutError (the pipeline's DeadlineExceeded) only if it is the watchdog's own
(``uncancel`` brings the count back to what it was), so a server shutting down still
cancels.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["within"]

T = TypeVar("T")


class _Watchdog:
    """The deadlines of one event loop's requests, and the one timer that enforces them."""

    # Neither the loop nor a timer handle (which refers to the loop) is kept: the loop is
    # this object's key in a weak dictionary. A timer superseded by an earlier one is
    # not cancelled but finds its generation outdated and does nothing.
    def __init__(self) -> None:
        self.deadlines: dict[asyncio.Task[object], float] = {}
        self.expired: set[asyncio.Task[object]] = set()
        self.armed_at = math.inf
        self.generation = 0

    def add(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], when: float) -> None:
        self.deadlines[task] = when
        if when < self.armed_at:
            self._arm(loop, when)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self.generation += 1
        self.armed_at = when
        loop.call_at(when, self._fire, self.generation)

    def _fire(self, generation: int) -> None:
        if generation != self.generation:
            return
        self.armed_at = math.inf
        loop = asyncio.get_running_loop()
        now, earliest = loop.time(), math.inf
        for task, when in self.deadlines.items():
            if when > now:
                earliest = min(earliest, when)
            elif task not in self.expired:
                self.expired.add(task)
                task.cancel()
        if earliest < math.inf:
            self._arm(loop, earliest)


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)


async def within(seconds: float, work: Awaitable[T]) -> T:
    """Await ``work``; raise TimeoutError if ``seconds`` pass first (it is cancelled).

    ``work`` runs in the calling task, as under ``asyncio.timeout``.
    """
    task: asyncio.Task[object] | None = asyncio.current_task()
    if task is None:  # not in a task (never under an ASGI server): the library's way
        async with asyncio.timeout(seconds):
            return await work
    loop = asyncio.get_running_loop()
    watchdog = _WATCHDOGS.get(loop)
    if watchdog is None:
        watchdog = _WATCHDOGS[loop] = _Watchdog()
    cancelling = task.cancelling()
    watchdog.add(loop, task, loop.time() + seconds)
    try:
        return await work
    except asyncio.CancelledError as exc:
        if task in watchdog.expired and task.uncancel() <= cancelling:
            raise TimeoutError from exc
        raise
    finally:
        del watchdog.deadlines[task]
        watchdog.expired.discard(task)
