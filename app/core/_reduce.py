"""Reduction of per-sample losses: none, sum, mean over the total weight."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core.errors import ZeroTotalWeight

__all__ = ["reduce"]


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
