"""The shifted softmax of rows, and log-sum-exp, log-softmax and softmax over any axis.

One formula serves every softmax the core computes (:mod:`app.core._rows` builds the
cross-entropy and the diagnostics on it): for a row ``x`` with ``j = argmax x`` (the
first on ties) and ``m = x_j``, ``z = x - m <= 0``, ``R = sum_{k != j} exp z_k`` and
``s = log1p R``, so that ``logsumexp = m + s``, ``log_softmax = z - s`` and
``softmax = exp(z) / (1 + R)``. The maximum's term, exactly ``exp 0 = 1``, stays out
of the sum and enters through ``log1p``: full relative precision when one logit
dominates.

Reference: P. Blanchard, D. J. Higham and N. J. Higham, "Accurately computing the
log-sum-exp and softmax functions", IMA J. Numer. Anal. 41(4), 2021.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "Shifted",
    "log_softmax",
    "logsumexp",
    "pick",
    "row_starts",
    "row_sums",
    "shift",
    "softmax",
]

FloatArray = NDArray[np.floating]
Ints = NDArray[np.intp]

# Below this many classes a row sum through einsum beats np.add.reduce; below this many
# elements a matrix-vector product beats einsum, and OpenBLAS does not thread it (the
# same bits whatever the threads). Figures: bench/README.md, design decisions.
_EINSUM_CLASSES = 2048
_GEMV_ELEMENTS = 1 << 15


@lru_cache(maxsize=64)
def _ones(c: int, dt: np.dtype[np.floating]) -> FloatArray:
    out = np.ones(c, dt)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=64)
def row_starts(k: int, c: int) -> Ints:
    """Flat index of each row's start in a C-contiguous ``[k, c]`` array (read-only)."""
    out = np.arange(0, k * c, c)
    out.flags.writeable = False
    return out


def pick(a: FloatArray, idx: Ints) -> FloatArray:
    """``a[r, idx[r]]`` for every row ``r`` of a ``[k, c]`` array (a copy)."""
    if a.flags.c_contiguous:  # flat take: cheaper than fancy indexing on small arrays
        out: FloatArray = a.take(idx + row_starts(*a.shape))
        return out
    out = a[np.arange(len(a)), idx]
    return out


def row_sums(e: FloatArray) -> FloatArray:
    """``sum_k e_k`` of each row of a ``[rows, classes]`` array."""
    c = e.shape[1]
    if e.size <= _GEMV_ELEMENTS and e.flags.c_contiguous:
        out: FloatArray = e.dot(_ones(c, e.dtype))
    elif c < _EINSUM_CLASSES:
        out = np.einsum("ij->i", e)
    else:
        out = np.add.reduce(e, 1)
    return out


@dataclass
class Shifted:
    """The shifted form of ``[rows, classes]`` values.

    ``pred = argmax x``, ``m`` the maxima, ``z = x - m``; ``e`` holds ``exp z`` with the
    maximum's term (exactly 1) set to 0, so that its row sum is ``R``; ``s = log1p R`` and
    ``inv = 1 / (1 + R)``, the largest probability. Shapes: ``pred``, ``m``, ``s``,
    ``inv`` ``[rows]``; ``z``, ``e`` ``[rows, classes]``.
    """

    pred: Ints
    m: FloatArray
    z: FloatArray
    e: FloatArray
    s: FloatArray
    inv: FloatArray

    def probs(self, out: FloatArray) -> FloatArray:
        """``p = exp(z) / (1 + R)`` into ``out`` (which may be ``e``)."""
        np.multiply(self.e, self.inv[:, None], out=out)
        if out.flags.c_contiguous:
            out.put(self.pred + row_starts(*out.shape), self.inv)
        else:
            out[np.arange(len(out)), self.pred] = self.inv
        return out


def shift(
    x: FloatArray,
    z: FloatArray,
    e: FloatArray,
    pred: Ints | None = None,
    m: FloatArray | None = None,
) -> Shifted:
    """The shifted form of ``[rows, classes]`` values ``x``, with ``z`` and ``e`` as buffers.

    ``z`` may be ``x`` itself (shifted in place); ``e`` must be another array. ``pred``
    and ``m``, when the caller has them, are ``argmax x`` and the values to shift by
    (the maxima; the caller may shift a row without a finite maximum by 0 instead).

    Example:
        >>> x = np.array([[1.0, 2.0, 3.0]])
        >>> sh = shift(x, np.empty_like(x), np.empty_like(x))
        >>> print(f"{float(sh.m[0] + sh.s[0]):.6f}", np.round(sh.probs(sh.e), 4))
        3.407606 [[0.09   0.2447 0.6652]]
    """
    if pred is None or m is None:
        pred = np.argmax(x, axis=1)
        m = pick(x, pred)
    np.subtract(x, m[:, None], out=z)
    np.exp(z, out=e)
    e.put(pred + row_starts(*e.shape), 0)
    r = row_sums(e)
    s = np.log1p(r)
    r += 1
    return Shifted(pred, m, z, e, s, np.reciprocal(r, out=r))


def _rows(x: ArrayLike, axis: int) -> tuple[FloatArray, FloatArray, Shifted]:
    """``x`` (integers as float64) with ``axis`` last, and the shifted form of its rows.

    Rows without a finite maximum are shifted by 0, so that an all ``-inf`` row gives
    ``z = -inf``, ``s = 0`` and ``logsumexp = -inf`` instead of NaN.
    """
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    moved = np.moveaxis(a, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1]) if moved.size else moved.reshape(0, 1)
    pred = np.argmax(flat, axis=1)
    top = flat[np.arange(len(flat)), pred]
    with np.errstate(all="ignore"):
        sh = shift(
            flat, np.empty_like(flat), np.empty_like(flat), pred, np.where(np.isfinite(top), top, 0)
        )
    return moved, top, sh


def _back(values: FloatArray, moved: FloatArray, axis: int) -> FloatArray:
    out: FloatArray = np.moveaxis(values.reshape(moved.shape), -1, axis)
    return out


def logsumexp(x: ArrayLike, axis: int = -1, keepdims: bool = False) -> FloatArray:
    """Log of the sum of exponentials over ``axis``: ``m + s`` (module docstring).

    Shapes: ``[batch, classes]`` -> ``[batch]``. ``-inf`` entries (masked classes)
    contribute nothing; an all ``-inf`` row gives ``-inf``; NaN propagates.

    Args:
        x: Values; integers are converted to float64, floats keep their dtype.
        axis: The axis to reduce (the class axis).
        keepdims: Keep ``axis`` with length 1.

    Returns:
        The log-sum-exp, in ``x``'s float dtype.

    Example:
        >>> print(f"{logsumexp([1000.0, 1000.0]):.4f}")
        1000.6931
    """
    moved, top, sh = _rows(x, axis)
    with np.errstate(all="ignore"):
        out: FloatArray = (top + sh.s).reshape(moved.shape[:-1])
    return np.expand_dims(out, axis) if keepdims else out


def log_softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """Logarithm of the softmax over ``axis``, ``z - s``, computed without ``log(softmax)``.

    Shapes: ``[batch, classes]`` -> ``[batch, classes]``.

    Args:
        x: Logits; integers are converted to float64.
        axis: The class axis.

    Returns:
        Log-probabilities, ``-inf`` where ``x`` is ``-inf`` (all of an all ``-inf``
        row: the scorers reject such rows, these functions do not judge); NaN across a
        row holding NaN or +inf.

    Example:
        >>> print(np.round(log_softmax([1000.0, 1.0]), 4))
        [   0. -999.]
    """
    moved, top, sh = _rows(x, axis)
    with np.errstate(all="ignore"):
        out = sh.z - sh.s[:, None]
    return _back(_undefined(out, top), moved, axis)


def softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """Softmax over ``axis``: ``exp(z) / (1 + R)``.

    Shapes: ``[batch, classes]`` -> ``[batch, classes]``.

    Args:
        x: Logits; integers are converted to float64.
        axis: The class axis.

    Returns:
        Probabilities that sum to 1 along ``axis`` (0 where ``x`` is ``-inf``, all of an
        all ``-inf`` row); NaN across a row holding NaN or +inf.

    Example:
        >>> print(np.round(softmax([1.0, 2.0, 3.0]), 4))
        [0.09   0.2447 0.6652]
    """
    moved, top, sh = _rows(x, axis)
    with np.errstate(all="ignore"):
        out = sh.probs(sh.e)
    out[top == -np.inf] = 0
    return _back(_undefined(out, top), moved, axis)


def _undefined(out: FloatArray, top: FloatArray) -> FloatArray:
    """``out`` with NaN in the rows whose maximum is NaN or +inf (no softmax there)."""
    bad = np.isnan(top) | (top == np.inf)
    if bad.any():
        out[bad] = np.nan
    return out
