"""Dataset-level metrics from an aggregate: the same formulas for a batch and a dataset."""

from __future__ import annotations

import math
from typing import Any

from scorer_client.metrics.aggregate import Aggregate
from scorer_client.metrics.calibration import calibration_errors
from scorer_client.metrics.classification import LOSS_EDGES, precision_recall_f1
from scorer_client.metrics.curves import curves_of

__all__ = ["metrics_of"]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def metrics_of(agg: Aggregate) -> dict[str, Any]:
    """The metrics an aggregate determines, as plain values (None where undefined).

    ``loss = loss_sum / total_weight``; ``accuracy = correct / count``;
    ``mean_confidence = confidence_sum / count``; ``brier = brier_sum / count``;
    calibration as :func:`calibration_errors`; ``top_k[k] = correct_k / count``;
    per class ``accuracy_c = correct_c / support_c`` and
    ``mean_loss_c = loss_sum_c / weight_c``; token-level
    ``nll = nll_sum / tokens`` and ``perplexity = exp(nll)``; classification as
    :func:`~scorer_client.metrics.classification.precision_recall_f1`, curves as
    :func:`~scorer_client.metrics.curves.curves_of`.

    Example:
        >>> agg = Aggregate(classes=3, count=4, correct=3, loss_sum=2.0, total_weight=4.0,
        ...                 confidence_sum=3.2)
        >>> m = metrics_of(agg)
        >>> print(m["loss"], m["accuracy"], f"{m['mean_confidence']:.4f}")
        0.5 0.75 0.8000
    """
    n = agg.count
    out: dict[str, Any] = {
        "task": agg.task,
        "classes": agg.classes,
        "count": n,
        "loss": _ratio(agg.loss_sum, agg.total_weight),
        "loss_sum": agg.loss_sum,
        "total_weight": agg.total_weight,
        "accuracy": _ratio(agg.correct, n),
        "mean_confidence": _ratio(agg.confidence_sum, n),
    }
    if agg.brier_sum is not None:
        out["brier"] = _ratio(agg.brier_sum, n)
    if agg.calibration is not None:
        c = agg.calibration
        out["calibration"] = calibration_errors(c.count, c.confidence_sum, c.correct)
    if agg.top_k is not None:
        out["top_k"] = [
            {"k": k, "accuracy": _ratio(int(hits), n)}
            for k, hits in zip(agg.top_k.k, agg.top_k.correct, strict=True)
        ]
    if agg.confusion is not None:
        out["confusion"] = agg.confusion.tolist()
    if agg.per_class is not None:
        p = agg.per_class
        out["per_class"] = {
            "support": p.support.tolist(),
            "accuracy": [_ratio(int(h), int(s)) for h, s in zip(p.correct, p.support, strict=True)],
            "mean_loss": [
                _ratio(float(ls), float(w)) for ls, w in zip(p.loss_sum, p.weight, strict=True)
            ],
        }
    if agg.loss_histogram is not None:
        out["loss_histogram"] = {
            "edges": LOSS_EDGES.tolist(),
            "count": agg.loss_histogram.tolist(),
        }
    if agg.classification is not None:
        k = agg.classification
        out["classification"] = {"threshold": k.threshold, **precision_recall_f1(k.tp, k.fp, k.fn)}
    if agg.curves is not None:
        out["curves"] = curves_of(agg.curves.positives, agg.curves.negatives)
    if agg.sequences is not None:
        s = agg.sequences
        nll = _ratio(s.nll_sum, s.tokens)
        out["sequences"] = {
            "count": s.sequences,
            "tokens": s.tokens,
            "nll": nll,
            "perplexity": None if nll is None else _exp(nll),
        }
    return out


def _exp(x: float) -> float:
    # A mean NLL above ~709.78 has a perplexity beyond float64: inf, not an error.
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
