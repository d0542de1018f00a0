"""Cross-entropy of a small batch in one block, its checks folded into work done anyway.

For a ``[64, 10]`` batch the arithmetic takes nanoseconds; the time goes to the fixed
cost of each NumPy call (about 1 µs) and to Python-level checks. This path takes the
common request (logits with class-index labels, no weights, smoothing, temperature or
per-sample diagnostics) as a single block in about twenty NumPy calls, and declines,
returning None, for anything else, so that the general path answers exactly as before.

Its data checks are two maxima: of the labels (read as unsigned, so that a negative
one is huge) and of ``|x|``, which is NaN for NaN and inf for +inf or -inf.
Every logit bounded by ``B = (over - log(classes_max) - 2) / 2`` (``over`` the log of
the largest float) is what the general fast path needs, with room to spare: no
exponential or row sum overflows, none is subnormal, no probability rounds to 0 and
no row is left to the stable path. The diagnostics' overflow, underflow and zero
counts are then 0 by construction and ``max_abs_logit`` is that ``max |x|``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._small_gate import BOUND, F64, PRECISION, SMALL_ELEMENTS, Float, admit
from app.core.options import LossOptions
from app.core.results import Diagnostics, LossResult, NumericalDiagnostics

__all__ = ["SMALL_ELEMENTS", "small_batch"]

# Read-only 0-d arrays: np.maximum takes one ~0.3 µs faster than a NumPy scalar.
_ZERO = {dt: np.broadcast_to(np.zeros((), dt), ()) for dt in PRECISION}


@lru_cache(maxsize=16)  # at most 16 x 256 KiB
def _offsets(n: int, c: int) -> NDArray[np.intp]:
    """``[2, n]``: twice the flat index of each row start of an ``[n, c]`` array."""
    # Two rows: added to [2, n] indices they need no broadcasting, which costs ~0.5 µs
    # (as does a strided slice of one array per c serving every n).
    out = np.tile(np.arange(0, n * c, c), (2, 1))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=64)
def _ones(c: int, dt: Float) -> NDArray[np.floating]:
    out = np.ones(c, dt)
    out.flags.writeable = False
    return out


def small_batch(predictions: Any, labels: Any, opts: LossOptions) -> LossResult | None:
    """:func:`score_cross_entropy` for a small batch of the common kind, else None.

    Per row, with ``e_k = exp(x_k)``, ``R = sum_{k != y} e_k`` and ``T = R + e_y``:
    ``loss = log1p(R / e_y)`` (all terms positive: full relative precision however
    small the loss), ``p_k = e_k / T``; diagnostics: confidence ``max_k p_k``,
    true-class probability ``e_y / T``, entropy ``log T - sum_k p_k x_k`` (clipped at
    0). Shapes: ``[..., classes]`` -> ``[...]``, class axis last.

    Returns None, having changed nothing, unless the request is of the kind
    :func:`app.core._small_gate.admit` takes, its labels are in ``[0, classes)`` and
    every ``|x| <= B`` (module docstring).

    Example:
        >>> r = small_batch(np.array([[1.0, 2.0, 3.0]]), np.array([2]), LossOptions())
        >>> print(f"{r.loss:.4f}")
        0.4076
        >>> print(small_batch(np.array([[1.0, np.nan]]), np.array([0]), LossOptions()))
        None
    """
    x, y = predictions, labels
    admitted = admit(x, y, opts)
    if admitted is None:
        return None
    dt, unsigned = admitted
    size, shape = x.size, x.shape
    c = shape[-1]
    # Labels in [0, c) (then none equals ignore_index) and |x| <= B (no NaN, no inf).
    # For small arrays argmax + item costs a third of a ufunc reduction; NaN wins argmax.
    flat_y = y if y.ndim == 1 else y.reshape(-1)
    wide = flat_y.view(unsigned)
    if wide.item(wide.argmax()) >= c:
        return None
    n = size // c
    x2 = x if len(shape) == 2 else x.reshape(n, c)
    # The only [n, c] temporaries: buf[0] = |x|, then e (loss only) or e x; buf[1] = e
    # (diagnostics); the probabilities overwrite e. With a third one, 32k-element
    # batches ran several times slower: page faults on fresh memory at every call.
    if opts.diagnostics:
        buf = np.empty((2, n, c), dt)
        mag = np.abs(x2, out=buf[0])
    else:
        mag = np.abs(x2)
    max_abs = float(mag.item(mag.argmax()))
    if not max_abs <= BOUND[dt]:
        return None

    ones = _ones(c, dt)
    off = _offsets(n, c)
    # No errstate: the bounds rule out overflow, division by 0 and invalid operations.
    # take/put of a 2-D array use flat indices. Every index is in range: no checks
    # (mode="clip"), except for put, whose checking loop is the faster one.
    # ndarray.dot, as np.dot's dispatch costs ~0.3 µs (and its out= more than a new array).
    if not opts.diagnostics:
        e = np.exp(x2, out=mag)
        fi = flat_y + off[0]
        ey = e.take(fi, mode="clip")
        e.put(fi, 0)
        rest = e.dot(ones)
        per = rest / ey  # rest is needed for the probabilities
        np.log1p(per, out=per)
        # float64 sums: BLAS for float64 (a third of a reduction's cost), float32 widened.
        if dt is F64:
            loss_sum = float(per.dot(_ones(n, dt)))
        else:
            loss_sum = float(np.add.reduce(per, dtype=np.float64))
        diagnostics = None
    else:
        # buf = [e x, e], the label's e zeroed after the product: both row sums,
        # sum_k e_k x_k and R, in one matvec.
        e = buf[1]
        np.exp(x2, out=e)
        np.multiply(e, x2, out=buf[0])
        picks = np.empty((2, n), np.intp)  # flat indices of the predicted and true classes
        x2.argmax(axis=1, out=picks[0])
        picks[1] = flat_y
        np.add(picks, off, out=picks)
        fi = picks[1]
        correct = int(np.count_nonzero(np.equal(picks[0], fi)))
        # e_pred, e_y -> confidence, true-class probability; entropy; loss: one reduction.
        stats = np.empty((4, n), dt)
        e.take(picks, out=stats[:2], mode="clip")
        e.put(fi, 0)
        sums = buf.reshape(2 * n, c).dot(ones)
        ey, rest, ent, per = stats[1], sums[n:], stats[2], stats[3]
        np.log1p(np.divide(rest, ey, out=per), out=per)
        total = rest + ey
        inv = np.reciprocal(total)
        np.multiply(sums[:n], inv, out=ent)
        np.subtract(np.log(total, out=total), ent, out=ent)  # log T - sum_k p_k x_k
        np.maximum(ent, _ZERO[dt], out=ent)
        np.multiply(stats[:2], inv, out=stats[:2])  # ey is now e_y / T
        conf, tcp, ent_sum, loss_sum = np.add.reduce(stats, axis=1, dtype=np.float64).tolist()
        diagnostics = Diagnostics(
            count=n,
            accuracy=correct / n,
            mean_confidence=conf / n,
            mean_entropy=ent_sum / n,
            mean_true_class_prob=tcp / n,
            numerical=NumericalDiagnostics(
                max_abs_logit=max_abs, overflow_rows=0, underflow_rows=0, zero_probs=0
            ),
        )
    probs = None
    if "probs" in opts.outputs:
        if diagnostics is None:
            inv = np.reciprocal(rest + ey)
            ey *= inv  # e_y / T, as with diagnostics
        e *= inv[:, None]  # e is not needed any more
        e.put(fi, ey)
        probs = e.reshape(shape)
    reduction = opts.reduction
    return LossResult(
        loss=None if reduction == "none" else loss_sum / n if reduction == "mean" else loss_sum,
        loss_sum=loss_sum,
        total_weight=float(n),
        per_sample=per if len(shape) == 2 else per.reshape(shape[:-1]),
        probs=probs,
        log_probs=None,
        diagnostics=diagnostics,
        label_kind="index",
        precision=PRECISION[dt],  # type: ignore[arg-type]
        reduction=reduction,
    )
