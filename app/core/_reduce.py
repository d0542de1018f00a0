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
    with np.errstate(over="ignore"):  # past float64: inf, and the mean below
        loss_sum = float(np.add.reduce(per, axis=None, dtype=np.float64))
    if reduction == "none":
        return None, loss_sum
    if reduction == "sum":
        return loss_sum, loss_sum
    if not math.isfinite(loss_sum) and bool(np.isfinite(per).all()):
        # Finite losses whose sum overflows (float64 losses near its maximum): their mean
        # is in range, summed divided.
        return float(np.add.reduce(per / total_weight, axis=None, dtype=np.float64)), loss_sum
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


def scaled(
    w: NDArray[np.float64] | None, top: float | None = None
) -> tuple[NDArray[np.float64] | None, int]:
    """``(w 2**-k, k)``, ``k`` the binary exponent of ``top`` (``max w`` when not given).

    Weights near the float maximum make ``sum(w l)`` and ``sum(w)`` overflow, and tiny
    ones make ``w l`` subnormal or 0, although the mean ``sum(w l) / sum(w)`` is an
    ordinary number. Scaled so that the largest weight that matters is in [1/2, 1),
    they do neither; a power of two changes no digit. ``top``: the largest weight in
    use (the labels' class weights), so that unused huge ones cannot push the used
    ones to 0.
    """
    if w is None or w.size == 0:
        return w, 0
    if top is None:
        top = float(np.max(w))
    if not 0 < top < math.inf:
        return w, 0
    k = math.frexp(top)[1]
    if k == 0:
        return w, 0
    with np.errstate(over="ignore"):  # an unused weight far above ``top``: inf, unread
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
