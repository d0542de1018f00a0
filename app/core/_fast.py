"""Fast path of softmax cross-entropy with class-index labels: one exp pass, no shift.

For a row whose exponentials neither overflow nor fall into the subnormal range,
``-log p_y = log1p(S)`` with ``S = sum_{k != y} exp(x_k) * exp(-x_y)``: the label's term
is left out of the sum (as Blanchard, Higham & Higham leave out the max term), every
term is positive, so the loss keeps full relative precision however small it is, and
no row maximum or shifted copy of the logits is needed. Rows where that does not hold
(NaN, +inf, a sum that overflows or is subnormal, ignored samples) are reported in
``stable`` and scored by the stable block path instead.

Blocks can run in several threads (NumPy's ufuncs, einsum and BLAS release the GIL):
each block returns its diagnostic partials and the caller folds them in block order,
so float sums are added in the same order, and results are the same bits, whatever
the number of threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._block_diagnostics import BlockDiagnostics, diagnose, fold
from app.core._dtypes import exp_limits
from app.core._pool import POOL, Claim

__all__ = ["FAST_BLOCK_BYTES", "FastRows", "index_rows"]

# Bigger blocks amortise the ~20 NumPy calls per block; 2 MiB stays in L2 + L3.
FAST_BLOCK_BYTES = 1 << 21
# Below this many classes a row sum through einsum beats np.add.reduce by ~4x.
_EINSUM_CLASSES = 2048

Floats = NDArray[np.floating]


@dataclass
class FastRows:
    """Per-row results of :func:`index_rows`; entries where ``stable`` is True are junk."""

    loss: Floats
    stable: NDArray[np.bool_]
    # Over the fast rows; zeros when not asked for.
    diagnostics: BlockDiagnostics = field(default_factory=BlockDiagnostics)


def _row_sums(e: Floats) -> Floats:
    out: Floats = np.einsum("ij->i", e) if e.shape[1] < _EINSUM_CLASSES else np.add.reduce(e, 1)
    return out


def index_rows(
    x: NDArray[Any],
    idx: NDArray[np.intp],
    skip: NDArray[np.bool_] | None,
    dt: np.dtype[np.floating],
    temperature: float,
    probs: Floats | None,
    diagnostics: bool,
    threads: int = 1,
) -> FastRows:
    """Score ``[rows, classes]`` logits ``x`` against class indices ``idx`` where it is safe.

    Per row, with ``e_k = exp(x_k)``, ``R = sum_{k != y} e_k`` and ``T = R + e_y``:
    ``loss = log1p(R * exp(-x_y))``, ``p_k = e_k / T``. Shapes: ``[rows, classes]`` ->
    ``[rows]``. A row is left to the stable path unless ``T`` is finite,
    ``R >= classes * tiny`` and ``R * exp(-x_y)`` is finite: no NaN or +inf, no overflow,
    no term that matters to the loss in the subnormal range. With probabilities or
    diagnostics asked for, a row with ``T < 1/2`` is also left there when a logit is at
    or below ``log(tiny)``: its probability would come from a subnormal ``e_k``.

    Args:
        x: Logits, rows contiguous, any real dtype (converted block by block to ``dt``).
        idx: Class index of each row (ignored rows: any valid index).
        skip: Ignored rows, sent to the stable path; None when there are none.
        dt: Compute dtype.
        temperature: Logits are divided by it first.
        probs: ``[rows, classes]`` output for the probabilities, or None.
        diagnostics: Also accumulate the batch diagnostics of the fast rows.
        threads: Blocks in flight at most: the caller's thread and ``threads - 1`` of a
            shared pool each take the next block until none is left. Same results (bits)
            for any value.

    Returns:
        Losses, the mask of rows left to the stable path, and the diagnostic sums.

    Example:
        >>> x, y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, np.nan]]), np.array([2, 0])
        >>> r = index_rows(x, y, None, np.dtype(np.float64), 1.0, None, False)
        >>> print(f"{r.loss[0]:.4f}", r.stable)
        0.4076 [False  True]
    """
    n, c = x.shape
    _, under = exp_limits(dt)
    tiny = float(np.finfo(dt).tiny)
    log_tiny = float(np.log(tiny))
    step = max(1, min(n, FAST_BLOCK_BYTES // max(1, c * dt.itemsize)))
    convert = x.dtype != dt or temperature != 1.0
    loss = np.empty(n, dt)
    stable = np.zeros(n, bool) if skip is None else skip.copy()

    blocks = range(0, n, step)
    parts: dict[int, BlockDiagnostics] = {}  # by block
    helpers = min(threads, len(blocks)) - 1
    # Each run takes the next block until none is left: a thread whose core is busy
    # elsewhere simply takes fewer blocks.
    todo: Iterator[tuple[int, int]] = enumerate(blocks) if helpers < 1 else Claim(blocks)

    def run() -> None:
        """Score blocks from ``todo`` until none is left; diagnostics go to ``parts``."""
        # Scratch of this run's own: runs may go on at once in other threads.
        xbuf = np.empty((step, c), dt) if convert else None
        # exp(x) goes straight into the probabilities when they are asked for.
        work = np.empty((step, c), dt) if probs is None else probs
        ar = np.arange(step)
        # Inside the run: NumPy's error state is per thread (a context variable).
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for i, r0 in todo:
                r1 = min(n, r0 + step)
                k, rr, yb = r1 - r0, ar[: r1 - r0], idx[r0:r1]
                xl = x[r0:r1]
                if xbuf is not None:
                    xl = xbuf[:k]
                    np.copyto(xl, x[r0:r1], casting="unsafe")
                    if temperature != 1.0:
                        xl /= dt.type(temperature)
                    if temperature < 1.0:
                        # A tiny temperature can push finite logits out of range (-inf
                        # too): the stable path reports it.
                        stable[r0:r1] |= np.any(np.isinf(xl) & np.isfinite(x[r0:r1]), axis=1)
                e = work[:k] if probs is None else work[r0:r1]
                np.exp(xl, out=e)
                xy = xl[rr, yb]
                ey = np.exp(xy)
                e[rr, yb] = 0
                rest = _row_sums(e)  # sum_{k != y} exp(x_k)
                total = rest + ey
                s = rest * np.exp(-xy)
                np.log1p(s, out=loss[r0:r1])
                # Finite total: no NaN, no +inf, no overflow; rest >= c * tiny: no term
                # that matters to the loss is subnormal (and the row has a finite logit
                # besides y); finite s: exp(-x_y) did not overflow (x_y below -over).
                ok = np.isfinite(total) & (rest >= c * tiny) & np.isfinite(s)
                if probs is not None or diagnostics:
                    # p_k = e_k / T. A subnormal e_k has lost digits, and a 0 all of them;
                    # dividing by T < 1/2 would carry the loss into normal probabilities.
                    low = np.flatnonzero(ok & (total < 0.5))
                    if low.size:
                        ok[low] = xl[low].min(axis=1) > log_tiny
                sb = stable[r0:r1]
                sb |= ~ok
                inv = 1 / total
                if probs is not None:
                    e *= inv[:, None]
                    e[rr, yb] = ey * inv
                if diagnostics:
                    parts[i] = diagnose(xl, e, probs is not None, xy, ey, yb, total, inv, sb, under)

    if helpers < 1:
        run()
    else:
        futures = POOL.submit(run, helpers)
        try:
            run()
        finally:
            # A helper still queued (behind other calls' tasks) has nothing left to do;
            # a running one writes into arrays the caller gets back: wait, even on error.
            for f in futures:
                f.cancel()
            wait(futures)
        for f in futures:
            if not f.cancelled():
                f.result()
    return FastRows(loss, stable, fold(parts)) if diagnostics else FastRows(loss, stable)
