"""Pieces of the sigmoid cross-entropy: stable -log sigmoid, checks, 0 * inf = 0."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._validate import at

__all__ = ["bad_predictions", "neg_log_sigmoids", "raise_first", "times", "unusable"]

Floats = NDArray[np.floating]


def bad_predictions(kind: str, tol: float) -> tuple[Any, Any, str]:
    """Element checks ``(non-finite, out of domain, domain text)`` for ``kind``."""
    if kind == "probs":
        return (lambda b: ~np.isfinite(b)), (lambda b: (b < 0) | (b > 1)), "finite and in [0, 1]"
    if kind == "log_probs":
        return (lambda b: np.isnan(b) | (b == np.inf)), (lambda b: b > tol), "finite or -inf, <= 0"
    return (
        (lambda b: np.isnan(b) | (b == np.inf)),
        (lambda b: np.zeros(b.shape, bool)),
        "finite or -inf",
    )


def raise_first(
    error: type[Exception], a: NDArray[Any], bad: NDArray[np.bool_], name: str, domain: str
) -> None:
    """Raise ``error`` at the first True of ``bad`` (C order), counting all of them."""
    flat = np.flatnonzero(bad)
    index = tuple(int(i) for i in np.unravel_index(flat[0], a.shape))
    raise error(
        f"{name} must be {domain}; got {a[index]} at {at(index)} ({flat.size} invalid values)",
        (name, *index),
    )


def unusable(b: NDArray[Any]) -> NDArray[np.bool_]:
    """NaN/+inf elements: zeroed before the arithmetic when their label is ignored."""
    if b.dtype.kind != "f":
        return np.zeros(b.shape, bool)
    out: NDArray[np.bool_] = ~np.isfinite(b) & (b != -np.inf)
    return out


def neg_log_sigmoids(
    x: Floats, kind: str, in_dtype: np.dtype[Any]
) -> tuple[Floats, Floats, NDArray[np.bool_]]:
    """``(-log s, -log(1 - s), s > 1/2)`` from logits, probabilities or log-probabilities.

    Logits: ``-log s = sp(-x)``, ``-log(1 - s) = sp(x)`` with the softplus
    ``sp(u) = max(u, 0) + log1p(exp(-|u|))``, which never overflows.
    """
    with np.errstate(divide="ignore", under="ignore"):
        if kind == "logits":
            tail = np.log1p(np.exp(-np.abs(x)))
            return np.maximum(-x, 0) + tail, np.maximum(x, 0) + tail, x > 0
        if kind == "probs":
            eps = max(
                float(np.finfo(in_dtype if in_dtype.kind == "f" else x.dtype).eps),
                float(np.finfo(x.dtype).eps),
            )
            q = np.clip(x, eps, 1 - eps)
            return -np.log(q), -np.log1p(-q), q > 0.5
        lq = np.minimum(x, 0)  # tolerated rounding above 0 means probability 1
        return -lq, -np.log(-np.expm1(lq)), lq > np.log(0.5)


def times(coef: Floats, v: Floats) -> Floats:
    """``coef * v`` with a zero coefficient giving exactly 0 (0 * inf = 0)."""
    out = np.zeros(np.broadcast_shapes(coef.shape, v.shape), v.dtype)
    np.multiply(coef, v, out=out, where=coef != 0)
    return out
