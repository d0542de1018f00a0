"""Batch diagnostics of one block of the fast path, and their sum in block order.

Each block of :func:`app.core._fast.index_rows` gives a :class:`BlockDiagnostics` of its
fast rows; :func:`fold` adds them in block order, so the float sums are added in the
same order, and the results are the same bits, whichever thread scored which block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["VECDOT_CLASSES", "BlockDiagnostics", "diagnose", "fold"]

# Below this many classes np.vecdot's BLAS row dots take half einsum's time, and OpenBLAS
# does not thread them (it does past ~10000 float64 terms: that would contend with the
# core's pool, and the order of the sum would follow OpenBLAS's thread count).
VECDOT_CLASSES = 2048

Floats = NDArray[np.floating]


@dataclass
class BlockDiagnostics:
    """Diagnostic counts and sums over some fast rows: one block's, or all of them."""

    count: int = 0
    correct: int = 0
    sums: tuple[float, float, float] = (0.0, 0.0, 0.0)  # confidence, entropy, true-class p
    max_abs: float = 0.0
    underflow: int = 0
    zero_probs: int = 0


def fold(parts: dict[int, BlockDiagnostics]) -> BlockDiagnostics:
    """The blocks' diagnostics added in block order, as one loop over them would."""
    out = BlockDiagnostics()
    # Python floats: the same IEEE double additions as a float64 array, with less overhead.
    conf = ent = tcp = 0.0
    for i in range(len(parts)):
        p = parts[i]
        out.count += p.count
        out.correct += p.correct
        conf, ent, tcp = conf + p.sums[0], ent + p.sums[1], tcp + p.sums[2]
        out.max_abs = max(out.max_abs, p.max_abs)
        out.underflow += p.underflow
        out.zero_probs += p.zero_probs
    out.sums = (conf, ent, tcp)
    return out


def diagnose(
    xl: Floats,
    e: Floats,
    normalised: bool,
    xy: Floats,
    ey: Floats,
    yb: NDArray[np.intp],
    total: Floats,
    inv: Floats,
    sb: NDArray[np.bool_],
    under: float,
) -> BlockDiagnostics:
    """Diagnostics of one block's fast rows; rows it cannot handle join ``sb``.

    Per row, with ``T = sum_k exp(x_k)`` (``total``) and ``p_k = exp(x_k) / T``:
    confidence ``max_k p_k``, entropy ``log T - sum_k p_k x_k``, true-class probability
    ``p_y``; counts of correct predictions, of rows with a logit at or below ``under``
    (its exp underflows) and of probabilities that are exactly 0, and ``max |x|``.
    Shapes: ``xl``, ``e`` ``[rows, classes]``; ``xy``, ``ey``, ``yb``, ``total``, ``inv``,
    ``sb`` ``[rows]``. ``e`` holds ``exp(x)`` without the label's term, or the
    probabilities when ``normalised``.
    """
    rr = np.arange(len(xl))
    pred = np.argmax(xl, axis=1)
    top = xl[rr, pred]  # row maxima, NaN where one is (argmax picks it): no pass for max
    # sum_k p_k x_k. Unnormalised, e lacks the label's term: add it back. 0 * -inf is
    # NaN: rows with masked classes take the stable path for their diagnostics.
    dot = np.vecdot(e, xl) if xl.shape[1] < VECDOT_CLASSES else np.einsum("ij,ij->i", e, xl)
    if not normalised:
        dot = (dot + ey * xy) * inv
    sb |= ~np.isfinite(dot)
    ok = ~sb
    conf, tcp = np.exp(top) * inv, ey * inv
    ent = np.maximum(np.log(total) - dot, 0)
    partial = bool(sb.any())
    if partial:
        count = int(np.count_nonzero(ok))
        correct = int(np.count_nonzero((pred == yb) & ok))
        c, h, t = (float(np.sum(v, where=ok, dtype=np.float64)) for v in (conf, ent, tcp))
    else:  # the usual case: spare the masks
        count = len(ok)
        correct = int(np.count_nonzero(pred == yb))
        c, h, t = np.add.reduce(np.stack((conf, ent, tcp)), axis=1, dtype=np.float64).tolist()
    part = BlockDiagnostics(count, correct, (c, h, t))  # confidence, entropy, true-class p
    lo, hi = float(xl.min()), float(top.max())
    exact = partial or not (math.isfinite(lo) and math.isfinite(hi))
    if exact:  # -inf, NaN or rows of the stable path in the block: look at the fast rows only
        xs = xl[ok]
        finite = np.isfinite(xs)
        lo = float(np.min(xs, where=finite, initial=np.inf))
        hi = float(np.max(xs, where=finite, initial=-np.inf))
        if lo <= under:
            part.underflow = int(np.count_nonzero(np.any(finite & (xs <= under), axis=1)))
    elif lo <= under:
        part.underflow = int(np.count_nonzero(np.any(xl <= under, axis=1)))
    if lo <= hi:
        part.max_abs = max(abs(lo), abs(hi))
    # A probability can be 0 only if exp(min x) * min(1 / total) rounds to 0 (or x = -inf).
    if exact or not np.exp(xl.dtype.type(lo)) * inv.min() > 0:
        p = e if normalised else np.exp(xl) * inv[:, None]
        if not normalised:
            p[rr, yb] = tcp
        part.zero_probs = int(np.count_nonzero((p == 0) & ok[:, None]))
    return part
