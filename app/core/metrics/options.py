"""Which evaluation metrics to compute, as a plain frozen dataclass (no web types)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_CONFUSION_MAX_CLASSES",
    "DEFAULT_CURVE_BINS",
    "DEFAULT_THRESHOLD",
    "MetricOptions",
]

DEFAULT_BINS = 15
DEFAULT_CONFUSION_MAX_CLASSES = 100
DEFAULT_CURVE_BINS = 1000
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class MetricOptions:
    """Metrics beyond the batch diagnostics; each costs extra and is off unless asked.

    ``calibration_bins``: equal-width bins of the top-label confidence (None: no
    calibration). ``brier``: multiclass Brier score. ``top_k``: k values of top-k
    accuracy. ``confusion``: confusion matrix, refused when there are more classes than
    ``confusion_max_classes``. ``per_class``: per-class support, accuracy and mean loss.
    ``sequences``: per-sequence and token-level NLL and perplexity (class-index labels
    with at least two per-sample axes: sequences first). ``loss_histogram``: counts of
    the per-sample losses over fixed log-spaced bins. ``classification``: per-class
    precision, recall, F1 and support with their macro, micro and weighted means, of
    the decisions ``p > threshold`` (binary, multi-label) or the argmax (one vs rest).
    ``curve_bins``: ROC and precision-recall curves and their areas from that many
    probability bins (None: no curves).
    """

    calibration_bins: int | None = None
    brier: bool = False
    top_k: tuple[int, ...] = ()
    confusion: bool = False
    confusion_max_classes: int = DEFAULT_CONFUSION_MAX_CLASSES
    per_class: bool = False
    sequences: bool = False
    loss_histogram: bool = False
    classification: bool = False
    threshold: float = DEFAULT_THRESHOLD
    curve_bins: int | None = None
