"""Reduction of per-sample losses: none, sum, mean over the total weight."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core.errors import ZeroTotalWeight

__all__ = ["reduce", "scaled", "unscaled"]


def reduce(
    per: NDArray[np.floating],
    total_weight: float,
    reduction: str,
    label_kind: str,
    ignored: NDArray[np.bool_] | None,
    sample_weighted: bool,
) -> tuple[float | None, float]:
    """``(loss, loss_sum)``; loss_sum accumulated in float64, loss None for ``none``.

    Raises:
        ZeroTotalWeight: for ``mean`` over a total weight of 0, instead of NaN.
    """
    loss_sum = float(np.add.reduce(per, axis=None, dtype=np.float64))
    if reduction == "none":
        return None, loss_sum
    if reduction == "sum":
        return loss_sum, loss_sum
    if total_weight == 0:
        loc: Any
        if ignored is not None and bool(ignored.all()):
            why, loc = "every label equals ignore_index", ("labels",)
        elif sample_weighted:
            why, loc = "the sample weights of the scored samples sum to 0", ("sample_weights",)
        else:
            why, loc = "the class weights of the labels sum to 0", ("class_weights",)
        raise ZeroTotalWeight(
            f"reduction 'mean' divides by the total weight, which is 0: {why}", loc
        )
    return loss_sum / total_weight, loss_sum


def scaled(w: NDArray[np.float64] | None) -> tuple[NDArray[np.float64] | None, int]:
    """``(w 2**-k, k)`` with ``k`` the binary exponent of ``max w`` when that is past 2**64.

    Weights near the float maximum make ``sum(w l)`` and ``sum(w)`` overflow although
    their quotient, the mean, is finite; a power of two scales them exactly.
    """
    if w is None or w.size == 0:
        return w, 0
    top = float(np.max(w))
    if top <= 2.0**64:
        return w, 0
    k = math.frexp(top)[1]
    out: NDArray[np.float64] = np.ldexp(w, -k)
    return out, k


def unscaled(
    per: NDArray[np.floating],
    loss: float | None,
    loss_sum: float,
    total_weight: float,
    reduction: str,
    num: int,
    den: int,
) -> tuple[NDArray[np.floating], float | None, float, float]:
    """Per-sample losses, loss, sum and total weight back from weights scaled by :func:`scaled`.

    ``num``: the exponent the losses were scaled by, ``den``: the total weight's. Values
    past the range become inf, as IEEE arithmetic rounds them; the mean was taken on the
    scaled sums, so it is finite wherever it is.
    """
    if not (num or den):
        return per, loss, loss_sum, total_weight
    with np.errstate(over="ignore"):
        per = np.ldexp(per, num).astype(per.dtype)
        loss_sum = float(np.ldexp(np.float64(loss_sum), num))
        total_weight = float(np.ldexp(np.float64(total_weight), den))
        if reduction == "sum":
            loss = loss_sum
        elif reduction == "mean" and loss is not None:
            loss = float(np.ldexp(np.float64(loss), num - den))
    return per, loss, loss_sum, total_weight
