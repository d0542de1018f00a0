"""ROC and precision-recall curves from binned scores, with a bound on their error.

A batch adds, per class, how many positives and negatives fall in each of ``B``
equal-width probability bins (bin ``b`` holds ``[e_b, e_{b+1})``, the last one
``[e_{B-1}, 1]``, as calibration bins). Those counts add across batches, and the curves
and areas follow from them; what they cannot tell is the order of the scores inside one
bin. The bounds below are what that order can change, so the exact (unbinned) values,
as scikit-learn computes them from every score, are within them.

With ``P`` positives and ``N`` negatives in all, ``p_b`` / ``n_b`` in bin ``b`` and
``A_b`` / ``F_b`` the positives / negatives in the bins above ``b``:

- ROC AUC (trapezoids over the bin edges): ``sum_b n_b (A_b + p_b / 2) / (P N)``. The
  exact AUC counts each positive-negative pair of one bin as 1, 0 or 1/2 where this
  counts 1/2, so ``|error| <= sum_b p_b n_b / (2 P N)``.
- Average precision (scikit-learn's ``sum (R_k - R_{k-1}) P_k``, at the bin edges):
  ``sum_b (p_b / P) (A_b + p_b) / (A_b + F_b + p_b + n_b)``. Inside bin ``b`` the exact
  value's ``p_b`` terms sum to at most ``p_b (A_b + p_b) / (A_b + F_b + p_b)`` (the
  positives tied above the bin's negatives) and at least
  ``sum_{k=1..p_b} (A_b + k) / (D_b + k)`` with ``D_b = A_b + F_b + n_b`` (the negatives
  first), which is ``p_b - (D_b - A_b) (H_{D_b + p_b} - H_{D_b})`` and no less than
  ``p_b - (D_b - A_b) log(1 + p_b / D_b)``. The bound is the larger distance from the
  binned term to either end, summed over bins and divided by ``P``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scorer_client.metrics.calibration import bin_edges, bin_index

__all__ = ["curve_counts", "curves_of"]

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def curve_counts(
    p: Floats, truth: NDArray[np.bool_], bins: int, scored: NDArray[np.bool_] | None = None
) -> tuple[Ints, Ints]:
    """Per class and bin: positives and negatives. Shapes ``[n, C]`` -> ``[C, bins]`` twice.

    ``scored`` (``[n, C]``) leaves out the elements that are False.

    Example:
        >>> pos, neg = curve_counts(np.array([[0.1], [0.9], [0.8]]),
        ...                         np.array([[False], [True], [False]]), 2)
        >>> pos.tolist(), neg.tolist()
        ([[0, 1]], [[1, 1]])
    """
    classes = p.shape[1]
    cell = bin_index(p, bins) + np.arange(classes) * bins
    size = classes * bins
    positive, negative = (truth, ~truth) if scored is None else (truth & scored, ~truth & scored)
    pos = np.bincount(cell[positive], minlength=size).astype(np.int64).reshape(classes, bins)
    neg = np.bincount(cell[negative], minlength=size).astype(np.int64).reshape(classes, bins)
    return pos, neg


def curves_of(positives: Ints, negatives: Ints) -> dict[str, Any]:
    """Areas, their bounds, macro means and the points of each class's curves.

    ``roc_auc`` is None for a class without positives or without negatives,
    ``average_precision`` for one without positives (scikit-learn warns and returns a
    number there); the macro means are over the classes that have a value, None if none.
    Points run from the highest threshold down, as scikit-learn's: the ROC from (0, 0)
    at threshold ``inf``, PR from recall 0 and precision 1 (scikit-learn's end point);
    only edges with scores at them are points, which leaves the curves unchanged.

    Example:
        >>> c = curves_of(np.array([[0, 1]]), np.array([[1, 0]]))
        >>> c["roc_auc"], c["average_precision"], c["roc_auc_bound"]
        ([1.0], [1.0], [0.0])
    """
    bins = positives.shape[1]
    edges = bin_edges(bins)
    per_class = [_one(positives[c], negatives[c], edges) for c in range(len(positives))]
    out: dict[str, Any] = {"bins": bins}
    for key in ("roc_auc", "roc_auc_bound", "average_precision", "average_precision_bound"):
        out[key] = [one[key] for one in per_class]
    for key in ("roc_auc", "average_precision"):
        known = [v for v in out[key] if v is not None]
        out[f"macro_{key}"] = math.fsum(known) / len(known) if known else None
    out["roc"] = [one["roc"] for one in per_class]
    out["pr"] = [one["pr"] for one in per_class]
    return out


def _one(pos: Ints, neg: Ints, edges: Floats) -> dict[str, Any]:
    # Highest bin first: a threshold at edge e_b takes the bins b and above.
    p, n = pos[::-1].astype(np.float64), neg[::-1].astype(np.float64)
    total_p, total_n = float(p.sum()), float(n.sum())
    above_p = np.cumsum(p) - p  # A_b
    above_n = np.cumsum(n) - n  # F_b
    tp, fp = above_p + p, above_n + n
    used = (p + n) > 0
    thresholds = [math.inf, *edges[:-1][::-1][used].tolist()]
    out: dict[str, Any] = {}
    if total_p and total_n:
        out["roc_auc"] = float(np.sum(n * (above_p + p / 2))) / (total_p * total_n)
        out["roc_auc_bound"] = float(np.sum(p * n)) / (2 * total_p * total_n)
    else:
        out["roc_auc"] = out["roc_auc_bound"] = None
    if total_p:
        with np.errstate(invalid="ignore", divide="ignore"):
            binned = np.where(p > 0, p * tp / (tp + fp), 0.0)
            high = np.where(p > 0, p * tp / (tp + above_n), 0.0)
            d = above_p + above_n + n
            low = np.where(p > 0, p - (d - above_p) * np.log1p(p / np.maximum(d, 1)), 0.0)
        out["average_precision"] = float(np.sum(binned)) / total_p
        worst = np.maximum(high - binned, binned - low)
        out["average_precision_bound"] = float(np.sum(worst)) / total_p
    else:
        out["average_precision"] = out["average_precision_bound"] = None
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = tp / total_p if total_p else np.zeros_like(tp)
        fpr = fp / total_n if total_n else np.zeros_like(fp)
    out["roc"] = {
        "thresholds": thresholds,
        "fpr": [0.0, *fpr[used].tolist()],
        "tpr": [0.0, *recall[used].tolist()],
    }
    out["pr"] = {
        "thresholds": thresholds,
        "precision": [1.0, *precision[used].tolist()],
        "recall": [0.0, *recall[used].tolist()],
    }
    return out
