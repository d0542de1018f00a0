"""Counts behind classification metrics: Brier, top-k, confusion, per-class, loss histogram,
and the per-class decision counts with the precision, recall and F1 they give."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LOSS_EDGES",
    "brier_terms",
    "confusion_counts",
    "decision_counts",
    "loss_histogram",
    "one_vs_rest_counts",
    "per_class_sums",
    "precision_recall_f1",
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


def decision_counts(
    pred: NDArray[np.bool_], truth: NDArray[np.bool_], scored: NDArray[np.bool_]
) -> tuple[Ints, Ints, Ints, Ints]:
    """Per class (column): ``tp, fp, fn, tn`` over the scored rows. ``[n, C]`` -> ``[C]``.

    Example:
        >>> t = np.array([[True], [False], [True]])
        >>> [a.tolist() for a in decision_counts(t, np.array([[True], [True], [False]]), t | ~t)]
        [[1], [1], [1], [0]]
    """

    def count(mask: NDArray[np.bool_]) -> Ints:
        counts: Ints = np.count_nonzero(mask & scored, axis=0).astype(np.int64)
        return counts

    return count(pred & truth), count(pred & ~truth), count(~pred & truth), count(~pred & ~truth)


def one_vs_rest_counts(
    truth: NDArray[np.intp], pred: NDArray[np.intp], classes: int
) -> tuple[Ints, Ints, Ints, Ints]:
    """Per class ``c``: ``tp, fp, fn, tn`` of "is it c", from class indices ``[n]``.

    The confusion matrix's diagonal, column and row sums, without the ``C x C`` matrix.

    Example:
        >>> [a.tolist() for a in one_vs_rest_counts(np.array([0, 1, 1]), np.array([0, 0, 1]), 2)]
        [[1, 1], [1, 0], [0, 1], [1, 1]]
    """
    tp = np.bincount(truth[truth == pred], minlength=classes).astype(np.int64)
    predicted = np.bincount(pred, minlength=classes).astype(np.int64)
    actual = np.bincount(truth, minlength=classes).astype(np.int64)
    fp, fn = predicted - tp, actual - tp
    return tp, fp, fn, len(truth) - tp - fp - fn


def precision_recall_f1(tp: Ints, fp: Ints, fn: Ints) -> dict[str, Any]:
    """Per-class precision, recall, F1, support and their macro, micro, weighted means.

    As scikit-learn's ``precision_recall_fscore_support`` with ``zero_division=0``:
    ``precision = tp / (tp + fp)``, ``recall = tp / (tp + fn)``,
    ``F1 = 2 tp / (2 tp + fp + fn)``, each 0 where its denominator is; support
    ``tp + fn``. Macro: the mean over classes; micro: the same formulas on the summed
    counts; weighted: the support-weighted mean (0 with no support at all).

    Example:
        >>> r = precision_recall_f1(np.array([2, 0]), np.array([1, 0]), np.array([0, 1]))
        >>> r["precision"], r["recall"], r["support"], r["macro"]["f1"]
        ([0.6666666666666666, 0.0], [1.0, 0.0], [2, 1], 0.4)
    """
    support = tp + fn

    def scores(tp: Any, fp: Any, fn: Any) -> tuple[Floats, Floats, Floats]:
        tp, fp, fn = (np.asarray(v, np.float64) for v in (tp, fp, fn))
        return _divide(tp, tp + fp), _divide(tp, tp + fn), _divide(2 * tp, 2 * tp + fp + fn)

    per = scores(tp, fp, fn)
    micro = scores(tp.sum(), fp.sum(), fn.sum())
    total = int(support.sum())
    names = ("precision", "recall", "f1")
    return {
        **{name: values.tolist() for name, values in zip(names, per, strict=True)},
        "support": support.tolist(),
        "macro": {name: float(np.mean(v)) for name, v in zip(names, per, strict=True)},
        "micro": {name: float(v) for name, v in zip(names, micro, strict=True)},
        "weighted": {
            name: float(np.dot(v, support) / total) if total else 0.0
            for name, v in zip(names, per, strict=True)
        },
    }


def _divide(num: Floats, den: Floats) -> Floats:
    out: Floats = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return out
