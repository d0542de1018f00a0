"""The answer the service must give, computed locally in float64 with NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["cross_entropy"]


def cross_entropy(
    logits: NDArray[np.floating[Any]], labels: NDArray[np.integer[Any]]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Softmax cross-entropy with integer labels, in float64.

    per_sample_i = logsumexp(x_i) - x_i[y_i], with logsumexp(x) = m + log(sum_j exp(x_j - m)),
    m = max_j x_j (the max shift keeps exp from overflowing).

    Args:
        logits: ``[batch, classes]``, any float dtype (converted exactly to float64).
        labels: ``[batch]`` class indices.

    Returns:
        ``(per_sample, lse)``: both ``[batch]``; the loss is ``per_sample.mean()``.
    """
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(x - m).sum(axis=-1)) + m[..., 0]
    picked = np.take_along_axis(x, np.asarray(labels, dtype=np.int64)[..., None], axis=-1)
    return lse - picked[..., 0], lse
