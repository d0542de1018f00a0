"""A dataset in batches in, exact dataset-level metrics out.

Each batch is scored with ``metrics.aggregate``; the aggregates are merged here, in
batch order, by :mod:`scorer_client.metrics` (the code the service runs), so the
numbers are those of one request holding the whole dataset. At most ``concurrency``
batches are in flight, and the iterator is read only as they finish, so a dataset
streamed from disk never needs to fit in memory.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol

from numpy.typing import ArrayLike

from scorer_client.metrics import Aggregate, aggregate_metrics
from scorer_client.metrics.aggregate import merge
from scorer_client.results import LossResult

__all__ = ["AsyncScorer", "Evaluation", "Progress", "Scorer", "evaluate", "evaluate_async"]

Loss = Literal["cross-entropy", "binary-cross-entropy"]
Batch = tuple[ArrayLike, ArrayLike]
DEFAULT_METRICS: Mapping[str, Any] = {"calibration": True, "brier": True}


class Scorer(Protocol):
    """What :func:`evaluate` needs of a client (:class:`~scorer_client.ScoringClient`)."""

    def cross_entropy(self, *args: Any, **kwargs: Any) -> LossResult: ...

    def binary_cross_entropy(self, *args: Any, **kwargs: Any) -> LossResult: ...


class AsyncScorer(Protocol):
    """What :func:`evaluate_async` needs (:class:`~scorer_client.AsyncScoringClient`)."""

    def cross_entropy(self, *args: Any, **kwargs: Any) -> Awaitable[LossResult]: ...

    def binary_cross_entropy(self, *args: Any, **kwargs: Any) -> Awaitable[LossResult]: ...


@dataclass(frozen=True)
class Evaluation:
    """Dataset-level ``metrics`` (as ``POST /v1/aggregates/merge`` answers them), the
    merged ``aggregate``, and how many ``batches`` and ``rows`` (samples) were sent."""

    metrics: dict[str, Any]
    aggregate: Aggregate
    batches: int
    rows: int


class Progress:
    """One line on a terminal, rewritten at most every ``interval`` seconds: batches,
    rows, rows per second. Silent when ``stream`` is not a terminal, unless ``always``."""

    def __init__(
        self, stream: IO[str] | None = None, interval: float = 0.5, always: bool = False
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.shown = always or self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.batches = self.rows = 0

    def update(self, rows: int) -> None:
        """Count one finished batch of ``rows`` rows."""
        self.batches += 1
        self.rows += rows
        now = time.monotonic()
        if self.shown and now - self.last >= self.interval:
            self.last = now
            self._write("\r")

    def close(self) -> None:
        """The final line."""
        if self.shown:
            self._write("\r")
            self.stream.write("\n")
            self.stream.flush()

    def _write(self, prefix: str) -> None:
        rate = self.rows / max(time.monotonic() - self.start, 1e-9)
        self.stream.write(
            f"{prefix}{self.batches:,} batches, {self.rows:,} rows, {rate:,.0f} rows/s"
        )
        self.stream.flush()


def _rows(batch: Batch) -> int:
    shape = getattr(batch[0], "shape", None)
    if shape is None:
        return len(batch[0])  # type: ignore[arg-type]
    return int(shape[0]) if shape else 1


def _options(loss: Loss, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    if loss not in ("cross-entropy", "binary-cross-entropy"):
        raise ValueError(f"loss must be cross-entropy or binary-cross-entropy; got {loss!r}")
    chosen = dict(DEFAULT_METRICS if metrics is None else metrics)
    return {**chosen, "aggregate": True}


def _call_options(options: dict[str, Any]) -> dict[str, Any]:
    # The aggregate is all evaluate keeps: no per-sample arrays and no batch diagnostics
    # (whose curve points can outweigh the batch) travel back; a sum, so that a batch
    # whose labels are all ignored is no error. The aggregate is the same either way.
    return {"outputs": (), "diagnostics": False, "reduction": "sum", **options}


class _InOrder:
    """The running sum of the aggregates in batch order; holds only those that finished
    ahead of an earlier batch (fewer than ``concurrency``), so memory does not grow with
    the number of batches, and the sums are the same whatever order requests finish in."""

    def __init__(self) -> None:
        self.total: Aggregate | None = None
        self.batches = 0
        self.rows = 0
        self.early: dict[int, tuple[Aggregate, int]] = {}

    def add(self, index: int, aggregate: Aggregate, rows: int) -> None:
        self.early[index] = (aggregate, rows)
        while self.batches in self.early:
            found, count = self.early.pop(self.batches)
            self.total = found if self.total is None else merge([self.total, found])
            self.batches += 1
            self.rows += count

    def result(self) -> Evaluation:
        if self.total is None:
            raise ValueError("no batches to evaluate")
        return Evaluation(aggregate_metrics(self.total), self.total, self.batches, self.rows)


def _aggregate(result: LossResult) -> Aggregate:
    assert result.aggregate is not None  # asked for with every batch
    return result.aggregate


def evaluate(
    client: Scorer,
    batches: Iterable[Batch],
    *,
    loss: Loss = "cross-entropy",
    metrics: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    progress: Progress | bool | None = None,
    **options: Any,
) -> Evaluation:
    """Score ``(predictions, labels)`` batches with ``concurrency`` requests in flight.

    ``metrics`` as the routes take it (default calibration and Brier; ``aggregate`` is
    always on); ``options`` go to each call (``input_kind``, ``ignore_index``, ...;
    by default no per-sample outputs, no batch diagnostics, reduction ``sum``).
    ``progress``: True for a line on stderr when it is a terminal, or a :class:`Progress`.
    The first error stops the run and is raised.
    """
    asked = _options(loss, metrics)
    sent = _call_options(options)
    call: Callable[..., LossResult] = (
        client.cross_entropy if loss == "cross-entropy" else client.binary_cross_entropy
    )
    shown = Progress() if progress is True else progress or None
    merged = _InOrder()
    pending: dict[Future[LossResult], tuple[int, int]] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        try:
            for index, (predictions, labels) in enumerate(batches):
                while len(pending) >= max(1, concurrency):
                    _collect(pending, merged, shown)
                future = pool.submit(call, predictions, labels, metrics=asked, **sent)
                pending[future] = (index, _rows((predictions, labels)))
            while pending:
                _collect(pending, merged, shown)
        finally:
            for future in pending:
                future.cancel()
            if shown is not None:
                shown.close()
    return merged.result()


def _collect(
    pending: dict[Future[LossResult], tuple[int, int]], merged: _InOrder, shown: Progress | None
) -> None:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        index, count = pending.pop(future)
        merged.add(index, _aggregate(future.result()), count)  # raises the batch's error
        if shown is not None:
            shown.update(count)


async def evaluate_async(
    client: AsyncScorer,
    batches: Iterable[Batch] | AsyncIterable[Batch],
    *,
    loss: Loss = "cross-entropy",
    metrics: Mapping[str, Any] | None = None,
    concurrency: int = 4,
    progress: Progress | bool | None = None,
    **options: Any,
) -> Evaluation:
    """As :func:`evaluate`, on the event loop; ``batches`` may be an async iterable."""
    asked = _options(loss, metrics)
    sent = _call_options(options)
    call = client.cross_entropy if loss == "cross-entropy" else client.binary_cross_entropy
    shown = Progress() if progress is True else progress or None
    merged = _InOrder()
    pending: set[asyncio.Task[None]] = set()

    async def score(index: int, predictions: ArrayLike, labels: ArrayLike) -> None:
        count = _rows((predictions, labels))
        result = await call(predictions, labels, metrics=asked, **sent)
        merged.add(index, _aggregate(result), count)
        if shown is not None:
            shown.update(count)

    async def each() -> Any:
        if isinstance(batches, AsyncIterable):
            async for batch in batches:
                yield batch
        else:
            for batch in batches:
                yield batch

    try:
        index = 0
        async for predictions, labels in each():
            while len(pending) >= max(1, concurrency):
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.difference_update(done)
                for task in done:
                    task.result()
            pending.add(asyncio.create_task(score(index, predictions, labels)))
            index += 1
        await asyncio.gather(*pending)
        pending.clear()
    finally:
        for task in pending:
            task.cancel()
        if shown is not None:
            shown.close()
    return merged.result()
