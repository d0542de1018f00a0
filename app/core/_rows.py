"""Softmax and its cross-entropy for a block of rows: the one implementation of the maths.

Every softmax the core computes (:func:`score_cross_entropy`, :func:`score_softmax`, the
public ``logsumexp``/``log_softmax``/``softmax``) is computed here on ``[rows, classes]``
blocks of ``x`` in the log domain (logits / T, log-probabilities, or the log of clipped
probabilities), in one of two forms:

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
and the shifted copy (bench/README.md). A row it cannot take -- NaN or +inf, a sum
that overflows or is subnormal, ``exp(-x_y)`` overflowing, or probabilities that would
come from subnormal exponentials -- is recomputed in the shifted form in the same call.

Both forms check the data as part of the arithmetic: a row with NaN, +inf or no finite
value has no finite maximum (shifted) or no finite usable sum (unshifted), and only then
are its values searched for the first bad one, located over the whole input.

Blocks may run in several threads (NumPy's loops release the GIL); each block's
diagnostics are a :class:`Partial` and are added in block order, so the results are the
same bits for any number of threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import exp_limits
from app.core._inputs import check_block, log_domain, unusable_rows
from app.core._layout import Layout
from app.core._pool import POOL, Claim
from app.core.errors import InvalidValue, ScoringError
from app.core.softmax import Shifted, row_sums, shift

__all__ = ["BLOCK_BYTES", "Job", "Partial", "fold", "run", "true_class_rank"]

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
    step = max(1, BLOCK_BYTES // max(1, c * max(job.dt.itemsize, job.x.dtype.itemsize)))
    flat = layout.view(job.x)
    n = layout.rows
    starts = range(0, n, step)
    parts: dict[int, Partial] = {}
    errors: dict[int, ScoringError] = {}
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
    """Buffers of one thread's blocks: the log-domain copy and the exponentials."""

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
    rr, yb = np.arange(k), job.index[rows]
    xl = block
    if block.dtype != dt or job.temperature != 1.0:
        xl = scratch.xl[:k]
        np.copyto(xl, block, casting="unsafe")
        if job.temperature != 1.0:
            xl /= dt.type(job.temperature)
    e = scratch.e[:k] if job.probs is None else job.probs[rows]
    np.exp(xl, out=e)
    xy = xl[rr, yb]
    ey = np.exp(xy)
    e[rr, yb] = 0
    rest = row_sums(e)  # R_y
    total = rest + ey  # T
    sv = rest * np.exp(-xy)
    loss = job.loss[rows]
    np.log1p(sv, out=loss)
    if job.class_weights is not None:
        loss *= job.class_weights[yb]
    # T finite: no NaN, +inf or overflow; R_y >= c tiny: no term that matters is subnormal
    # and some logit besides y is finite; sv finite: exp(-x_y) did not overflow. A tiny
    # temperature that took a finite logit to -inf is an error the shifted form reports.
    tiny = float(np.finfo(dt).tiny)
    ok = np.isfinite(total) & (rest >= c * tiny) & np.isfinite(sv)
    if xl is not block and job.temperature < 1.0:
        ok &= ~np.any(np.isinf(xl) & np.isfinite(block), axis=1)
    if job.probs is not None:
        # p_k = e_k / T. A subnormal e_k has lost digits, and a 0 all of them; dividing by
        # T < 1/2 would carry the loss into normal probabilities.
        low = np.flatnonzero(ok & (total < 0.5))
        if low.size:
            ok[low] = xl[low].min(axis=1) > np.log(tiny)
        inv = np.reciprocal(total)
        e *= inv[:, None]
        e[rr, yb] = ey * inv
    if job.skip is not None:
        ok &= ~job.skip[rows]
    return None if ok.all() else ~ok


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
        # Checks the temperature (finite logits must stay finite) on this block.
        return log_domain(block, job.kind, job.dt, job.temperature, None), True
    if block.dtype == job.dt:
        return block, False
    xl = scratch.xl[: len(block)]
    np.copyto(xl, block, casting="unsafe")
    return xl, True


def _shifted(job: Job, idx: slice | Ints, block: NDArray[Any], scratch: _Scratch) -> Partial | None:
    """The shifted form of ``block`` (rows ``idx``) into every output; its diagnostics."""
    k = len(block)
    rr = np.arange(k)
    xl, owned = _log_domain(job, idx, block, scratch)
    skip = None if job.skip is None else job.skip[idx]
    pred = np.argmax(xl, axis=1)
    m = xl[rr, pred]
    junk = None
    if not np.isfinite(m).all():
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
    part = _numerical(job, xl, m, scored) if job.diagnostics else None
    truth = job.index[idx] if job.index is not None else None
    ylab = None
    if job.target is not None:
        ylab = job.layout.take(job.target, idx)
        check_block(job.layout, job.target, ylab, idx, None, "probs", "labels", InvalidValue)
        truth = np.argmax(ylab, axis=1)
    rank = None
    if job.per_sample is not None and truth is not None:
        rank = true_class_rank(xl, truth)
    sh = shift(xl, xl if owned else scratch.xl[:k], scratch.e[:k], pred, m)
    if job.loss is not None:
        _loss(job, idx, sh, truth, ylab, block)
    if job.lse is not None:
        job.lse[idx] = sh.m + sh.s
    if job.log_probs is not None:
        job.log_probs[idx] = sh.z - sh.s[:, None]
        if junk is not None:
            job.log_probs[_rows_of(idx, junk)] = np.nan
    p = None
    if job.probs is not None or (job.diagnostics and ylab is not None):
        direct = job.probs is not None and isinstance(idx, slice)
        p = sh.probs(job.probs[idx] if direct else np.empty_like(sh.e))  # type: ignore[index]
        if junk is not None:
            p[junk] = np.nan
        if job.probs is not None and not direct:
            job.probs[idx] = p
    if part is None:
        return None
    return _diagnose(job, idx, sh, p, truth, ylab, scored, rank, part)


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
) -> None:
    """Per-row loss of the shifted form into ``job.loss`` (class weights and smoothing in)."""
    assert job.loss is not None
    c, w, eps = sh.z.shape[1], job.class_weights, job.smoothing
    rr = np.arange(len(sh.z))
    if ylab is None:
        assert truth is not None
        zy = sh.z[rr, truth]
        loss: Floats = sh.s - zy
        if w is not None:
            loss *= w[truth]
        if eps > 0:
            loss = (1 - eps) * loss + (eps / c) * _weighted_nll(sh, w)
        # z_y = -inf from a finite x_y: the spread overflowed the precision (a masked
        # class, x_y = -inf, has loss inf rightly).
        over = np.isinf(zy) & np.isfinite(block[rr, truth])
    else:
        yf = ylab.astype(job.dt)
        if eps > 0:
            yf = yf * job.dt.type(1 - eps) + job.dt.type(eps / c)
        loss = _weighted_nll(sh, yf if w is None else yf * w)
        over = np.isinf(loss) & np.isfinite(block).all(axis=1)
    if job.skip is not None:
        skip = job.skip[idx]
        loss[skip] = 0
        over &= ~skip
    if over.any():
        r = int(_rows_of(idx, over)[0])
        where = job.layout.row_index(r)
        raise InvalidValue(
            f"{job.name} row {list(where)} spans more than {job.dt.name} can hold: its loss"
            " overflows; compute in float64 or rescale the logits",
            (job.name, *where),
        )
    job.loss[idx] = loss


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


def _numerical(job: Job, xl: Floats, m: Floats, scored: Mask | None) -> Partial:
    """``max |x|`` (finite), rows where ``exp(x)`` overflows / a finite one underflows.

    ``m``: the row maxima, finite (checked).
    """
    over, under = exp_limits(job.dt)
    hi, lo = m, xl.min(axis=1)
    if scored is not None:
        hi, lo = hi[scored], lo[scored]
    part = Partial()
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
    p: Floats | None,
    truth: Ints | None,
    ylab: NDArray[Any] | None,
    scored: Mask | None,
    rank: NDArray[np.int64] | None,
    part: Partial,
) -> Partial:
    """Confidence ``1 / S``, entropy ``s - sum p z``, true-class probability, counts."""
    rr = np.arange(len(sh.z))
    conf = sh.inv
    # sum_k e_k z_k: 0 * -inf is NaN where a class is masked; those rows add the terms
    # with e_k > 0 only.
    dot = _row_dots(sh.e, sh.z)
    masked = np.flatnonzero(np.isnan(dot))
    if masked.size:
        ez = sh.e[masked] * sh.z[masked]
        dot[masked] = np.sum(ez, axis=1, where=sh.e[masked] > 0)
    ent = sh.s - dot * sh.inv
    tcp = None
    if truth is not None:
        if ylab is None:
            ey = sh.e[rr, truth]
            ey[sh.pred == truth] = 1  # the maximum's term was set to 0
            tcp = ey * sh.inv
        else:
            assert p is not None
            tcp = np.sum(ylab.astype(job.dt) * p, axis=1)
    # A probability is 0 only where e_k / S rounds to 0: rows whose smallest does.
    zmin = sh.z.min(axis=1)
    zero_rows = np.flatnonzero(np.exp(zmin) * sh.inv == 0)
    if scored is not None:
        zero_rows = zero_rows[scored[zero_rows]]
    if zero_rows.size:
        pz = sh.e[zero_rows] * sh.inv[zero_rows, None]
        pz[np.arange(zero_rows.size), sh.pred[zero_rows]] = 1  # never 0
        part.zero_probs = int(np.count_nonzero(pz == 0))
    values = [conf, ent] + ([] if tcp is None else [tcp])
    if scored is None:
        part.count = len(rr)
        sums = np.add.reduce(np.stack(values), axis=1, dtype=np.float64).tolist()
        if truth is not None:
            part.correct = int(np.count_nonzero(sh.pred == truth))
    else:
        part.count = int(np.count_nonzero(scored))
        sums = [float(np.sum(v, where=scored, dtype=np.float64)) for v in values]
        if truth is not None:
            part.correct = int(np.count_nonzero((sh.pred == truth) & scored))
    part.sums = (sums[0], sums[1], sums[2] if tcp is not None else 0.0)
    if job.per_sample is not None:
        c = sh.z.shape[1]
        if c > 1:
            second = sh.e.max(axis=1)  # the maximum's term is 0 in e: the runner-up
            margin = conf - second * sh.inv
        else:
            margin = conf
        values_by_name: dict[str, NDArray[Any] | None] = {
            "predicted_class": sh.pred,
            "confidence": conf,
            "true_class_prob": tcp,
            "margin": margin,
            "true_class_rank": rank,
            "entropy": ent,
        }
        for name, v in values_by_name.items():
            if v is None:
                continue
            if scored is None:
                job.per_sample[name][idx] = v
            else:
                out = job.per_sample[name][idx]
                out[scored] = v[scored]
                job.per_sample[name][idx] = out
    return part
