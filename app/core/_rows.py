"""Softmax cross-entropy and its diagnostics over blocks of rows: the one kernel.

:func:`score_cross_entropy` and :func:`score_softmax` compute here, on ``[rows, classes]``
blocks of ``x`` in the log domain (logits / T, log-probabilities, or the log of clipped
probabilities); the shifted form is :func:`app.core.softmax.shift`, which the public
``logsumexp``/``log_softmax``/``softmax`` share. Two forms:

**Shifted** (every request): ``j = argmax x`` (the first on ties), ``m = x_j``,
``z = x - m <= 0``, ``e = exp z`` (``e_j = 1``), ``R = sum_{k != j} e_k`` and
``s = log1p R`` (Blanchard, Higham & Higham, 2021). Then, with ``S = 1 + R``,

- ``-log p_c = s - z_c``, a sum of non-negative terms; the loss of an index label is
  ``s - z_y``, of probability labels ``sum_c w_c y'_c (s - z_c)``;
- ``p_c = e_c / S``, ``log p_c = z_c - s``, ``logsumexp = m + s``;
- confidence ``p_j = 1 / S``; entropy ``H = s - sum_k p_k z_k``, again two non-negative
  terms, so it keeps its relative precision however confident the row.

**Unshifted** (the measured special case: index labels asking for no more than the loss
and the probabilities, the hot request): ``e = exp x``, ``R_y = sum_{k != y} e_k``,
``T = R_y + e_y``; ``-log p_y = log1p(R_y exp(-x_y))`` (every term positive: full
relative precision however small the loss) and ``p = e / T``. It saves the row maximum
and the shifted copy (bench/README.md, design decisions). A row it cannot take --
NaN or +inf, a sum that overflows or is subnormal, ``exp(-x_y)`` overflowing, or
probabilities that would come from subnormal exponentials -- is recomputed in the
shifted form in the same call.

:func:`plain` is the same operations on one small block whose logits are bounded, without
the general path's per-call overhead.

Both forms check the data as part of the arithmetic: a row with NaN, +inf or no finite
value has no finite maximum (shifted) or no finite usable sum (unshifted), and only then
are its values searched for the first bad one, located over the whole input.

Blocks may run in several threads (NumPy's loops release the GIL); each block's
diagnostics are a :class:`Partial` and are added in block order, so the results are the
same bits for any number of threads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import limits
from app.core._inputs import check_block, log_domain, unusable_rows
from app.core._layout import Layout
from app.core._pool import POOL, Claim
from app.core.errors import InvalidValue, ScoringError
from app.core.softmax import Shifted, pick, row_starts, row_sums, shift

__all__ = [
    "BLOCK_BYTES",
    "PLAIN_ELEMENTS",
    "Job",
    "Partial",
    "fold",
    "plain",
    "run",
    "true_class_rank",
]

# Bigger blocks amortise the fixed cost of each NumPy call; 2 MiB stays in L2 + L3.
BLOCK_BYTES = 1 << 21
_SMALL_ROWS = 2048  # as in app.core.softmax

Floats = NDArray[np.floating]
Ints = NDArray[np.intp]
Mask = NDArray[np.bool_]


def _row_dots(a: Floats, b: Floats) -> Floats:
    # Below _SMALL_ROWS classes vecdot's row dots beat einsum's, unthreaded by OpenBLAS.
    out: Floats = np.vecdot(a, b) if a.shape[1] < _SMALL_ROWS else np.einsum("ij,ij->i", a, b)
    return out


def true_class_rank(x: Floats, truth: Ints) -> NDArray[np.int64]:
    """``1 + #{c : x_c > x_y} + #{c < y : x_c = x_y}``: the rank of the true class ``y``.

    Ties go to the lower class index, as ``argmax`` breaks them, so that rank 1 is exactly
    a correct prediction and top-1 accuracy is the accuracy. Shapes: ``[rows, classes]``,
    ``[rows]`` -> ``[rows]``.

    Example:
        >>> true_class_rank(np.array([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4]]), np.array([0, 2]))
        array([3, 2])
    """
    at_truth = x[np.arange(len(truth)), truth][:, None]
    before = np.arange(x.shape[1])[None, :] < truth[:, None]
    ahead = (x > at_truth) | ((x == at_truth) & before)
    out: NDArray[np.int64] = 1 + np.count_nonzero(ahead, axis=1).astype(np.int64)
    return out


@dataclass
class Partial:
    """Batch diagnostic counts and sums over some scored rows: one block's, or all of them."""

    count: int = 0
    correct: int = 0
    sums: tuple[float, float, float] = (0.0, 0.0, 0.0)  # confidence, entropy, true-class p
    max_abs: float = 0.0
    overflow: int = 0
    underflow: int = 0
    zero_probs: int = 0


def fold(parts: list[Partial]) -> Partial:
    """The parts added in order, as one loop over the blocks would add them."""
    out = Partial()
    conf = ent = tcp = 0.0  # Python floats: the same IEEE double additions
    for p in parts:
        out.count += p.count
        out.correct += p.correct
        conf, ent, tcp = conf + p.sums[0], ent + p.sums[1], tcp + p.sums[2]
        out.max_abs = max(out.max_abs, p.max_abs)
        out.overflow += p.overflow
        out.underflow += p.underflow
        out.zero_probs += p.zero_probs
    out.sums = (conf, ent, tcp)
    return out


@dataclass
class Job:
    """One call's inputs, options and outputs, shared by all its blocks.

    ``x`` is the caller's array of kind ``kind`` (named ``name`` in errors) laid out by
    ``layout``. Labels: ``index`` (class indices of all rows, in range) or ``target`` (the
    probability labels, same layout as ``x``), or neither (no loss). ``skip`` marks the
    ignored rows. Outputs are whole-batch ``[rows]`` / ``[rows, classes]`` arrays in
    ``dt``, None when not asked for; ``per_sample`` holds the per-sample diagnostics.
    """

    x: NDArray[Any]
    layout: Layout
    dt: np.dtype[np.floating]
    kind: str = "logits"
    name: str = "logits"
    temperature: float = 1.0
    index: Ints | None = None
    target: NDArray[Any] | None = None
    skip: Mask | None = None
    class_weights: Floats | None = None
    smoothing: float = 0.0
    loss: Floats | None = None
    probs: Floats | None = None
    log_probs: Floats | None = None
    lse: Floats | None = None
    diagnostics: bool = False
    per_sample: dict[str, NDArray[Any]] | None = None
    unshifted: bool = field(init=False)

    def __post_init__(self) -> None:
        # The unshifted form gives the loss of an index label and the probabilities only.
        self.unshifted = (
            self.kind == "logits"
            and self.index is not None
            and self.smoothing == 0
            and self.log_probs is None
            and self.lse is None
            and not self.diagnostics
        )


def run(job: Job, threads: int = 1) -> Partial | None:
    """Compute every block of ``job`` into its outputs; the diagnostics when asked for.

    ``threads``: blocks in flight at most, the caller's thread and ``threads - 1`` of a
    shared pool each taking the next block until none is left; the same bits for any
    value. Raises the :class:`ScoringError` of the first block (in row order) that has one.
    """
    layout, c = job.layout, job.layout.classes
    n = layout.rows
    step = max(1, min(n, BLOCK_BYTES // max(1, c * max(job.dt.itemsize, job.x.dtype.itemsize))))
    flat = layout.view(job.x)
    starts = range(0, n, step)
    parts: dict[int, Partial] = {}
    errors: dict[int, ScoringError] = {}
    if len(starts) == 1:  # one block: no pool, no claims
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            block = flat if flat is not None else layout.take(job.x, slice(0, n))
            return _block(job, slice(0, n), block, _Scratch(n, c, job.dt))
    helpers = min(threads, len(starts)) - 1
    todo: Iterator[tuple[int, int]] = enumerate(starts) if helpers < 1 else Claim(starts)

    def work() -> None:
        """Compute blocks from ``todo`` until none is left or one before them failed."""
        scratch = _Scratch(step, c, job.dt)
        # NumPy's error state is per thread: set it in each.
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for i, r0 in todo:
                if errors and i > min(errors):
                    return
                rows = slice(r0, min(n, r0 + step))
                block = flat[rows] if flat is not None else layout.take(job.x, rows)
                try:
                    part = _block(job, rows, block, scratch)
                except ScoringError as exc:
                    errors[i] = exc
                    return
                if part is not None:
                    parts[i] = part

    if helpers < 1:
        work()
    else:
        futures = POOL.submit(work, helpers)
        try:
            work()
        finally:
            # A helper still queued has nothing left to do; a running one writes into
            # arrays the caller gets back: wait for it, even on error.
            for f in futures:
                f.cancel()
            wait(futures)
        for f in futures:
            if not f.cancelled():
                f.result()
    if errors:
        raise errors[min(errors)]
    return fold([parts[i] for i in sorted(parts)]) if job.diagnostics else None


class _Scratch:
    """Buffers of one thread's blocks: the log-domain copy and the exponentials.

    Pages that are never written cost nothing: a buffer a request does not use is free.
    """

    def __init__(self, rows: int, classes: int, dt: np.dtype[np.floating]) -> None:
        self.xl = np.empty((rows, classes), dt)
        self.e = np.empty((rows, classes), dt)


def _block(job: Job, rows: slice, block: NDArray[Any], scratch: _Scratch) -> Partial | None:
    """One block: the unshifted form where it holds, the shifted form for the rest."""
    if job.unshifted:
        redo = _unshifted(job, rows, block, scratch)
        if redo is None:
            return None
        some = np.flatnonzero(redo)
        idx = some + rows.start
        return _shifted(job, idx, block[some], _Scratch(len(some), block.shape[1], job.dt))
    return _shifted(job, rows, block, scratch)


def _unshifted(job: Job, rows: slice, block: NDArray[Any], scratch: _Scratch) -> Mask | None:
    """The unshifted form into ``job.loss``/``job.probs``; the rows it leaves, or None."""
    dt, k, c = job.dt, len(block), block.shape[1]
    assert job.index is not None
    assert job.loss is not None
    xl = block
    if block.dtype != dt or job.temperature != 1.0:
        xl = scratch.xl[:k]
        np.copyto(xl, block, casting="unsafe")
        if job.temperature != 1.0:
            xl /= dt.type(job.temperature)
    yb = job.index[rows]
    e = scratch.e[:k] if job.probs is None else job.probs[rows]
    np.exp(xl, out=e)
    fi = yb + row_starts(k, c)  # flat indices of the labels in e
    ey = e.take(fi)
    e.put(fi, 0)
    rest = row_sums(e)  # R_y
    sv = rest / ey  # R_y exp(-x_y)
    loss = job.loss[rows]
    np.log1p(sv, out=loss)
    if job.class_weights is not None:
        loss *= job.class_weights[yb]
    # Per row: e_y finite and normal, R_y / e_y finite (no NaN, +inf or overflow), and
    # R_y >= c tiny (no term that matters is subnormal; some logit besides y is finite).
    # Checked on the block's extremes first: the common block passes in four reductions.
    tiny = limits(dt).tiny
    if not (
        tiny <= ey.min() and ey.max() < np.inf and c * tiny <= rest.min() and sv.max() < np.inf
    ):
        ok = (tiny <= ey) & (ey < np.inf) & (c * tiny <= rest) & (sv < np.inf)
    else:
        ok = None
    if xl is not block and job.temperature < 1.0:
        # A tiny temperature that took a finite logit to -inf: the shifted form reports it.
        lost = np.any(np.isinf(xl) & np.isfinite(block), axis=1)
        ok = ~lost if ok is None else ok & ~lost
    if job.probs is not None:
        total = rest + ey  # T
        if not total.max() < np.inf:  # R_y and e_y finite, their sum not: p would be 0
            ok = (total < np.inf) if ok is None else ok & (total < np.inf)
        # p_k = e_k / T. A subnormal e_k has lost digits, and a 0 all of them; dividing by
        # T < 1/2 would carry the loss into normal probabilities.
        if not total.min() >= 0.5:
            low = np.flatnonzero(total < 0.5)
            low_ok = xl[low].min(axis=1) > limits(dt).log_tiny
            if not low_ok.all():
                ok = np.ones(k, bool) if ok is None else ok
                ok[low] &= low_ok
        inv = np.reciprocal(total)
        e *= inv[:, None]
        e.put(fi, ey * inv)
    if job.skip is not None:
        ok = ~job.skip[rows] if ok is None else ok & ~job.skip[rows]
    return None if ok is None or ok.all() else ~ok


# Up to this many logits a plain batch skips the general path's per-call overhead.
PLAIN_ELEMENTS = 1 << 15


def plain(
    x: Floats, y: Ints, loss: Floats, probs: Floats | None, diagnostics: bool
) -> Partial | Literal[False] | None:
    """The common small request in one block, or False: :func:`run` must take it.

    ``x``: ``[k, c]`` logits in the compute dtype, C-contiguous, ``c >= 2``, at most
    ``PLAIN_ELEMENTS``; ``y``: class indices in range. Taken when every
    ``|x| <= B = (-log(tiny) - log(c) - 2) / 2``: then no exponential, sum or probability
    overflows or is subnormal in either form and every check of :func:`run` passes, so
    the same operations, in the same order, give the same bits without them: the unshifted
    form for the loss and probabilities, the shifted form with diagnostics. What is left
    out is the general path's per-call overhead (bench/README.md, design decisions);
    tests/core/test_gate.py holds the two to the bit.
    """
    k, c = x.shape
    lim = limits(x.dtype)
    mag = np.abs(x)
    top = float(mag.max())
    if not top <= (-lim.log_tiny - math.log(c) - 2) / 2:  # also NaN
        return False
    if not diagnostics:
        e = np.exp(x, out=mag) if probs is None else np.exp(x, out=probs)
        fi = y + row_starts(k, c)
        ey = e.take(fi)
        e.put(fi, 0)
        rest = row_sums(e)
        np.log1p(np.divide(rest, ey, out=loss), out=loss)
        if probs is not None:
            inv = np.reciprocal(rest + ey)
            e *= inv[:, None]
            e.put(fi, ey * inv)
        return None
    pred = x.argmax(axis=1)
    m = pick(x, pred)
    sh = shift(x, mag, np.empty_like(x), pred, m)
    zy = pick(sh.z, y)
    np.subtract(sh.s, zy, out=loss)
    if probs is not None:
        sh.probs(probs)
    dot = _row_dots(sh.e, sh.z)
    dot *= sh.inv
    ent = np.subtract(sh.s, dot, out=dot)
    tcp = np.exp(zy)
    tcp *= sh.inv
    sums = np.add.reduce(np.array((sh.inv, ent, tcp)), axis=1, dtype=np.float64).tolist()
    correct = int(np.count_nonzero(sh.pred == y))
    return Partial(k, correct, (sums[0], sums[1], sums[2]), max_abs=top)


def _log_domain(
    job: Job, idx: slice | Ints, block: NDArray[Any], scratch: _Scratch
) -> tuple[Floats, bool]:
    """``block`` in the log domain, and whether that is a copy of ours (to shift in place).

    Logits are checked later, by their maxima; other kinds here, for their domain.
    """
    if job.kind != "logits":
        check_block(job.layout, job.x, block, idx, job.skip, job.kind, job.name)
        skip = None if job.skip is None else job.skip[idx]
        junk = None if skip is None else skip & unusable_rows(block)
        return log_domain(block, job.kind, job.dt, job.temperature, junk), True
    if job.temperature != 1.0:
        # Checks the temperature (finite logits must stay finite) on this block's scored rows.
        ignored = None if job.skip is None else job.skip[idx]
        return log_domain(block, job.kind, job.dt, job.temperature, None, ignored), True
    if block.dtype == job.dt:
        return block, False
    xl = scratch.xl[: len(block)]
    np.copyto(xl, block, casting="unsafe")
    return xl, True


@dataclass
class _Range:
    """What a block's extremes prove: ``lo``/``hi`` its smallest value and largest maximum.

    ``plain``: every value finite and no row ignored, so that no row needs looking at for
    NaN, masked classes or skipping. ``narrow``: the spread ``hi - lo`` keeps every
    ``exp z`` and every probability a normal number (none is 0, no ``z`` overflows).
    """

    lo: float
    hi: float
    plain: bool
    narrow: bool


def _range(xl: Floats, m: Floats, skip: Mask | None) -> _Range:
    lo = float(np.minimum.reduce(xl, axis=None))
    hi = float(np.maximum.reduce(m))
    plain = skip is None and -np.inf < lo and hi < np.inf  # False for NaN as well
    # exp(lo - hi) / classes >= 4 tiny: every probability and exponential is normal.
    c = xl.shape[1]
    narrow = plain and hi - lo < -limits(xl.dtype).log_tiny - math.log(c) - 2
    return _Range(lo, hi, plain, narrow)


def _shifted(job: Job, idx: slice | Ints, block: NDArray[Any], scratch: _Scratch) -> Partial | None:
    """The shifted form of ``block`` (rows ``idx``) into every output; its diagnostics."""
    k = len(block)
    xl, owned = _log_domain(job, idx, block, scratch)
    skip = None if job.skip is None else job.skip[idx]
    pred = np.argmax(xl, axis=1)
    m = pick(xl, pred)
    rng = _range(xl, m, skip)
    junk = None
    if not rng.plain and not np.isfinite(m).all():
        # NaN, +inf or no finite value: an error unless the row is ignored; an ignored one
        # is computed as zeros and its outputs reported as NaN.
        junk = ~np.isfinite(m)
        if skip is None or (junk & ~skip).any():
            check_block(job.layout, job.x, block, idx, job.skip, job.kind, job.name)
            raise InvalidValue(f"{job.name} cannot be scored in {job.dt.name}", (job.name,))
        if not owned:
            xl, owned = xl.copy(), True
        xl[junk], pred[junk], m[junk] = 0, 0, 0
    scored = None if skip is None else ~skip
    if not rng.narrow:
        _check_span(job, idx, xl, m, scored)
    part = _numerical(job, xl, m, scored, rng) if job.diagnostics else None
    truth = job.index[idx] if job.index is not None else None
    ylab = None
    if job.target is not None:
        ylab = job.layout.take(job.target, idx)
        check_block(job.layout, job.target, ylab, idx, None, "probs", "labels", InvalidValue)
        truth = np.argmax(ylab, axis=1)
    rank = None
    if job.per_sample is not None and truth is not None:
        rank = true_class_rank(xl, truth)
    # The exponentials go straight into the probabilities when they are asked for; they
    # are normalised in place once the diagnostics have read them.
    direct = job.probs is not None and isinstance(idx, slice)
    e = job.probs[idx] if direct else scratch.e[:k]  # type: ignore[index]
    sh = shift(xl, xl if owned else scratch.xl[:k], e, pred, m)
    zy = None
    if job.loss is not None:
        zy = _loss(job, idx, sh, truth, ylab, block, rng)
    if job.lse is not None:
        job.lse[idx] = sh.m + sh.s
    if job.log_probs is not None:
        job.log_probs[idx] = sh.z - sh.s[:, None]
        if junk is not None:
            job.log_probs[_rows_of(idx, junk)] = np.nan
    if part is not None:
        part = _diagnose(job, idx, sh, truth, ylab, zy, scored, rank, rng, part)
    if job.probs is not None:
        p = sh.probs(sh.e)
        if junk is not None:
            p[junk] = np.nan
        if not direct:
            job.probs[idx] = p
    return part


def _check_span(job: Job, idx: slice | Ints, xl: Floats, m: Floats, scored: Mask | None) -> None:
    """Refuse a scored row whose finite values span more than the precision can hold.

    ``z = x - m`` would be -inf for a finite ``x``: its log-probability and loss would be
    -inf and inf, answers that look like a masked class. Rare: only blocks that are not
    narrow are looked at.
    """
    top = limits(job.dt).max
    with np.errstate(invalid="ignore"):
        lo = np.min(xl, axis=1, where=np.isfinite(xl), initial=np.inf)
    span = m.astype(np.float64) - lo.astype(np.float64)
    wide = span > top  # False where lo is inf (one finite value) or NaN
    if scored is not None:
        wide &= scored
    if wide.any():
        where = job.layout.row_index(int(_rows_of(idx, wide)[0]))
        raise InvalidValue(
            f"{job.name} row {list(where)} spans {float(span[wide][0]):.4g}, more than"
            f" {job.dt.name} can hold ({top:.4g}): compute in float64 or rescale",
            (job.name, *where),
        )


def _rows_of(idx: slice | Ints, mask: Mask) -> Ints:
    """The batch rows of the block rows in ``mask``."""
    local = np.flatnonzero(mask)
    return local + idx.start if isinstance(idx, slice) else idx[local]


def _loss(
    job: Job,
    idx: slice | Ints,
    sh: Shifted,
    truth: Ints | None,
    ylab: NDArray[Any] | None,
    block: NDArray[Any],
    rng: _Range,
) -> Floats | None:
    """Per-row loss of the shifted form into ``job.loss`` (class weights and smoothing in).

    Returns ``z_y`` for index labels (None for probability labels).
    """
    assert job.loss is not None
    c, w, eps = sh.z.shape[1], job.class_weights, job.smoothing
    zy = None
    if ylab is None:
        assert truth is not None
        zy = pick(sh.z, truth)
        loss: Floats = sh.s - zy
        if w is not None or eps > 0:
            # (1 - e) w_y (s - z_y) + e / C sum_c w_c (s - z_c); a zero coefficient gives
            # exactly 0 where the class is masked (s - z = inf), as in every term.
            coef = np.full(len(loss), 1 - eps, job.dt) if w is None else w[truth] * (1 - eps)
            loss = np.multiply(coef, loss, out=np.zeros_like(loss), where=coef != 0)
            if eps > 0:
                loss += (eps / c) * _weighted_nll(sh, w)
    else:
        yf = ylab.astype(job.dt)
        if eps > 0:
            yf = yf * job.dt.type(1 - eps) + job.dt.type(eps / c)
        loss = _weighted_nll(sh, yf if w is None else yf * w)
    if job.skip is not None:
        loss[job.skip[idx]] = 0
    job.loss[idx] = loss
    return zy


def _weighted_nll(sh: Shifted, coef: Floats | None) -> Floats:
    """``sum_c coef_c (s - z_c)`` per row, a zero coefficient giving 0 even where z_c = -inf."""
    nll = sh.s[:, None] - sh.z
    if coef is None:
        out: Floats = np.sum(nll, axis=1)
        return out
    terms = np.zeros_like(nll)
    np.multiply(np.broadcast_to(coef, nll.shape), nll, out=terms, where=coef != 0)
    out = np.sum(terms, axis=1)
    return out


def _numerical(job: Job, xl: Floats, m: Floats, scored: Mask | None, rng: _Range) -> Partial:
    """``max |x|`` (finite), rows where ``exp(x)`` overflows / a finite one underflows.

    ``m``: the row maxima, finite (checked).
    """
    over, under = limits(job.dt).over, limits(job.dt).under
    part = Partial()
    if rng.plain:  # the block's extremes answer unless they cross a threshold
        part.max_abs = max(abs(rng.lo), abs(rng.hi))
        if rng.hi > over:
            part.overflow = int(np.count_nonzero(m > over))
        if rng.lo <= under:
            part.underflow = int(np.count_nonzero(xl.min(axis=1) <= under))
        return part
    hi, lo = m, xl.min(axis=1)
    if scored is not None:
        hi, lo = hi[scored], lo[scored]
    if not len(hi):
        return part
    masked = np.flatnonzero(np.isinf(lo))  # -inf: masked classes; their finite values
    if masked.size:
        rows = xl[masked] if scored is None else xl[scored][masked]
        lo[masked] = np.min(rows, axis=1, where=np.isfinite(rows), initial=np.inf)
    finite_lo = float(np.min(lo))  # inf where a row's only finite value is its maximum
    part.max_abs = max(float(np.max(np.abs(hi))), abs(finite_lo) if finite_lo < np.inf else 0.0)
    part.overflow = int(np.count_nonzero(hi > over))
    part.underflow = int(np.count_nonzero(lo <= under))
    return part


def _diagnose(
    job: Job,
    idx: slice | Ints,
    sh: Shifted,
    truth: Ints | None,
    ylab: NDArray[Any] | None,
    zy: Floats | None,
    scored: Mask | None,
    rank: NDArray[np.int64] | None,
    rng: _Range,
    part: Partial,
) -> Partial:
    """Confidence ``1 / S``, entropy ``s - sum p z``, true-class probability, counts.

    ``zy``: ``z`` of the index labels, when the loss took it.
    """
    conf = sh.inv
    dot = _row_dots(sh.e, sh.z)  # sum_k e_k z_k
    if not rng.narrow:
        # 0 * -inf is NaN where z_k = -inf (a masked class, or a spread past the range):
        # those rows add the terms with e_k > 0.
        masked = np.flatnonzero(np.isnan(dot))
        if masked.size:
            ez = sh.e[masked] * sh.z[masked]
            dot[masked] = np.sum(ez, axis=1, where=sh.e[masked] > 0)
    dot *= sh.inv
    ent = np.subtract(sh.s, dot, out=dot)
    tcp = None
    if truth is not None:
        if ylab is None:
            tcp = np.exp(pick(sh.z, truth) if zy is None else zy)
            tcp *= sh.inv
        else:  # sum_c y_c p_c, the maximum's term (e = 1) added back
            yl = ylab.astype(job.dt)
            tcp = _row_dots(yl, sh.e) + pick(yl, sh.pred)
            tcp *= sh.inv
    if not rng.narrow:
        # A probability is 0 only where e_k / S rounds to 0: rows whose smallest does.
        zmin = sh.z.min(axis=1)
        zero_rows = np.flatnonzero(np.exp(zmin) * sh.inv == 0)
        if scored is not None:
            zero_rows = zero_rows[scored[zero_rows]]
        if zero_rows.size:
            pz = sh.e[zero_rows] * sh.inv[zero_rows, None]
            pz[np.arange(zero_rows.size), sh.pred[zero_rows]] = 1  # never 0
            part.zero_probs = int(np.count_nonzero(pz == 0))
    values = (conf, ent) if tcp is None else (conf, ent, tcp)
    if scored is None:
        part.count = len(conf)
        sums = np.add.reduce(np.array(values), axis=1, dtype=np.float64).tolist()
        if truth is not None:
            part.correct = int(np.count_nonzero(sh.pred == truth))
    else:
        part.count = int(np.count_nonzero(scored))
        sums = [float(np.sum(v, where=scored, dtype=np.float64)) for v in values]
        if truth is not None:
            part.correct = int(np.count_nonzero((sh.pred == truth) & scored))
    part.sums = (sums[0], sums[1], sums[2] if tcp is not None else 0.0)
    if job.per_sample is not None:
        _store(job, idx, sh, conf, tcp, ent, rank, scored)
    return part


def _store(
    job: Job,
    idx: slice | Ints,
    sh: Shifted,
    conf: Floats,
    tcp: Floats | None,
    ent: Floats,
    rank: NDArray[np.int64] | None,
    scored: Mask | None,
) -> None:
    """The per-sample diagnostics of the block's scored rows into ``job.per_sample``."""
    assert job.per_sample is not None
    # The runner-up: the maximum's term is 0 in e.
    margin = conf - sh.e.max(axis=1) * sh.inv if sh.e.shape[1] > 1 else conf
    values = {
        "predicted_class": sh.pred,
        "confidence": conf,
        "true_class_prob": tcp,
        "margin": margin,
        "true_class_rank": rank,
        "entropy": ent,
    }
    for name, v in values.items():
        if v is None:
            continue
        if scored is None:
            job.per_sample[name][idx] = v
        else:
            out = job.per_sample[name][idx]
            out[scored] = v[scored]
            job.per_sample[name][idx] = out
