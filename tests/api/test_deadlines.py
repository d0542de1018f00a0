"""within(): one watchdog timer per loop enforces every request's deadline."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from app.api.deadlines import _WATCHDOGS, within

Runner = Callable[[Coroutine[Any, Any, Any]], Any]
LOOPS = [pytest.param(asyncio.run, id="asyncio"), pytest.param(uvloop.run, id="uvloop")]


async def _sleep(seconds: float, value: str = "done") -> str:
    await asyncio.sleep(seconds)
    return value


def _idle() -> None:
    loop = asyncio.get_running_loop()
    assert not _WATCHDOGS[loop].deadlines
    assert not _WATCHDOGS[loop].expired


@pytest.mark.parametrize("run", LOOPS)
def test_work_in_time_returns_and_leaves_no_cancellation_behind(run: Runner) -> None:
    async def main() -> None:
        assert await within(0.2, _sleep(0.01)) == "done"
        await asyncio.sleep(0.3)  # past the deadline: nothing is delivered late
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
        _idle()

    run(main())


@pytest.mark.parametrize("run", LOOPS)
def test_work_past_its_deadline_is_cancelled_with_timeout_error(run: Runner) -> None:
    async def main() -> None:
        cancelled = False

        async def slow() -> None:
            nonlocal cancelled
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled = True
                raise

        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await within(0.05, slow())
        assert 0.04 < time.monotonic() - start < 1.0
        assert cancelled
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0  # the watchdog's cancellation was taken back
        assert await within(0.2, _sleep(0.01, "again")) == "again"
        _idle()

    run(main())


@pytest.mark.parametrize("run", LOOPS)
def test_a_cancellation_from_outside_stays_a_cancellation(run: Runner) -> None:
    async def main() -> None:
        task = asyncio.create_task(within(5, _sleep(5)))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _idle()

    run(main())


@pytest.mark.parametrize("run", LOOPS)
def test_each_task_meets_its_own_deadline(run: Runner) -> None:
    async def one(seconds: float, takes: float) -> str:
        try:
            return await within(seconds, _sleep(takes, "ok"))
        except TimeoutError:
            return "late"

    async def main() -> None:
        # A long deadline first, then shorter ones: the timer is re-armed earlier.
        cases = [(5.0, 0.05), (0.1, 1.0), (0.3, 0.05), (0.2, 1.0), (0.15, 0.01)]
        start = time.monotonic()
        results = await asyncio.gather(*(one(s, t) for s, t in cases))
        assert results == ["ok", "late", "ok", "late", "ok"]
        assert time.monotonic() - start < 1.0  # the late ones did not run to the end
        _idle()

    run(main())


@pytest.mark.parametrize("run", LOOPS)
def test_the_error_of_the_work_itself_propagates(run: Runner) -> None:
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("inside")

    async def main() -> None:
        with pytest.raises(ValueError, match="inside"):
            await within(1, fails())
        _idle()

    run(main())


def test_a_closed_loop_leaves_no_watchdog_behind() -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        assert await within(1, _sleep(0)) == "done"

    for _ in range(3):
        asyncio.run(main())
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]  # the watchdog kept none alive
