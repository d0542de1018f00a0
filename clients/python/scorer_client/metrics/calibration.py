"""Calibration of the top-label confidence: binned statistics and ECE, MCE, RMS."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["bin_edges", "bin_index", "calibration_counts", "calibration_errors"]

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def bin_edges(bins: int) -> Floats:
    """``bins + 1`` equal-width edges over [0, 1]: ``np.linspace(0, 1, bins + 1)``."""
    return np.linspace(0.0, 1.0, bins + 1)


def bin_index(confidence: Floats, bins: int) -> NDArray[np.intp]:
    """Bin of each confidence: bin ``b`` holds ``[e_b, e_{b+1})``, the last ``[e_{B-1}, 1]``.

    Found by search on the edges themselves, so that a confidence equal to an edge
    lands in the bin that edge opens (``0.2 * 5`` rounding cannot move it), and a
    confidence of exactly 1.0 falls in the last bin.

    Example:
        >>> bin_index(np.array([0.0, 0.2, 0.3999, 1.0]), 5)
        array([0, 1, 1, 4])
    """
    b = np.searchsorted(bin_edges(bins), confidence, side="right") - 1
    return np.clip(b, 0, bins - 1)


def calibration_counts(
    confidence: Floats, correct: NDArray[np.bool_], bins: int
) -> tuple[Ints, Floats, Ints]:
    """Per-bin sample count, sum of confidences and count of correct predictions.

    These are the sufficient statistics of every binned calibration error: batches
    add them bin by bin.

    Args:
        confidence: Top-label probabilities ``max_c p_c``, shape ``[samples]``.
        correct: Whether the top label is the true class, shape ``[samples]``.
        bins: Number of equal-width bins.

    Returns:
        ``(count, confidence_sum, correct)``, each of shape ``[bins]``.
    """
    b = bin_index(confidence, bins)
    count = np.bincount(b, minlength=bins).astype(np.int64)
    conf_sum = np.bincount(b, weights=confidence, minlength=bins).astype(np.float64)
    hits = np.bincount(b[correct], minlength=bins).astype(np.int64)
    return count, conf_sum, hits


def calibration_errors(count: Ints, conf_sum: Floats, correct: Ints) -> dict[str, Any]:
    """ECE, MCE, RMS calibration error and the reliability diagram from binned sums.

    With ``n_b`` samples in bin ``b``, ``acc_b = correct_b / n_b``,
    ``conf_b = confidence_sum_b / n_b`` and ``N = sum_b n_b``:
    ``ECE = sum_b (n_b / N) |acc_b - conf_b| = sum_b |correct_b - confidence_sum_b| / N``,
    ``MCE = max_{b: n_b > 0} |acc_b - conf_b|``,
    ``RMS = sqrt(sum_b (n_b / N) (acc_b - conf_b)^2)``
    (Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017).
    Empty bins have None for mean confidence and accuracy; all errors are None when
    ``N = 0``.

    Example:
        >>> r = calibration_errors(np.array([2, 0]), np.array([0.5, 0.0]), np.array([2, 0]))
        >>> print(f"{r['ece']:.4f} {r['mce']:.4f}")
        0.7500 0.7500
    """
    bins = len(count)
    edges = bin_edges(bins)
    n = int(np.sum(count))
    full = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(full, correct / np.maximum(count, 1), np.nan)
        conf = np.where(full, conf_sum / np.maximum(count, 1), np.nan)
    reliability = [
        {
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "count": int(count[b]),
            "mean_confidence": float(conf[b]) if full[b] else None,
            "accuracy": float(acc[b]) if full[b] else None,
        }
        for b in range(bins)
    ]
    out: dict[str, Any] = {"bins": bins, "ece": None, "mce": None, "rms": None}
    if n:
        gap = np.abs(correct[full] - conf_sum[full])
        out["ece"] = float(np.sum(gap) / n)
        out["mce"] = float(np.max(gap / count[full]))
        out["rms"] = math.sqrt(float(np.sum(gap * gap / count[full])) / n)
    out["reliability"] = reliability
    return out
