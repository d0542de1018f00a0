"""Counts behind classification metrics: Brier, top-k, confusion, per-class, loss histogram."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LOSS_EDGES",
    "brier_terms",
    "confusion_counts",
    "loss_histogram",
    "per_class_sums",
    "top_k_correct",
]

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

# Per-sample losses are spread over decades: 0, then 4 bins a decade from 1e-4 to 1e2,
# then everything above (an infinite loss included). Fixed, so that batches add up.
LOSS_EDGES: Floats = np.concatenate([[0.0], np.logspace(-4, 2, 25), [np.inf]])


def brier_terms(p: NDArray[np.floating], truth: NDArray[np.floating]) -> Floats:
    """Per-sample ``sum_c (p_c - y_c)^2`` with ``y`` one-hot or probability labels.

    Shapes: ``[samples, classes]`` -> ``[samples]``; computed in float64. The
    multiclass Brier score is their mean (Brier, 1950; sklearn's ``brier_score_loss``
    with more than two classes).

    Example:
        >>> print(brier_terms(np.array([[0.25, 0.75]]), np.array([[0.0, 1.0]])))
        [0.125]
    """
    d = p.astype(np.float64) - truth
    out: Floats = np.einsum("ij,ij->i", d, d)
    return out


def top_k_correct(rank: Ints, ks: tuple[int, ...]) -> Ints:
    """For each ``k``, the number of samples whose true class ranks ``<= k``.

    Example:
        >>> top_k_correct(np.array([1, 3, 2]), (1, 2))
        array([1, 2])
    """
    return np.array([int(np.count_nonzero(rank <= k)) for k in ks], np.int64)


def confusion_counts(truth: NDArray[np.intp], pred: NDArray[np.intp], classes: int) -> Ints:
    """``[classes, classes]`` counts; row = true class, column = predicted (as sklearn).

    Example:
        >>> confusion_counts(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)
        array([[1, 0],
               [1, 1]])
    """
    flat = np.bincount(truth * classes + pred, minlength=classes * classes)
    return flat.astype(np.int64).reshape(classes, classes)


def per_class_sums(
    truth: NDArray[np.intp],
    correct: NDArray[np.bool_],
    loss: Floats,
    weight: Floats,
    classes: int,
) -> tuple[Ints, Ints, Floats, Floats]:
    """Per true class: support, correct count, sum of per-sample losses, sum of weights.

    ``mean_loss_c = loss_sum_c / weight_sum_c`` is the reduction 'mean' restricted to
    class ``c``; their sums over classes are the batch's ``loss_sum`` and ``total_weight``.
    """
    support = np.bincount(truth, minlength=classes).astype(np.int64)
    hits = np.bincount(truth[correct], minlength=classes).astype(np.int64)
    loss_sum = np.bincount(truth, weights=loss, minlength=classes).astype(np.float64)
    weight_sum = np.bincount(truth, weights=weight, minlength=classes).astype(np.float64)
    return support, hits, loss_sum, weight_sum


def loss_histogram(loss: Floats) -> Ints:
    """Counts of per-sample losses over :data:`LOSS_EDGES` (``[e_b, e_{b+1})``, last closed).

    Example:
        >>> h = loss_histogram(np.array([0.0, 0.5, np.inf]))
        >>> int(h[0]), int(h[-1]), int(h.sum())
        (1, 1, 3)
    """
    bins = len(LOSS_EDGES) - 1
    b = np.clip(np.searchsorted(LOSS_EDGES, loss, side="right") - 1, 0, bins - 1)
    return np.bincount(b, minlength=bins).astype(np.int64)
