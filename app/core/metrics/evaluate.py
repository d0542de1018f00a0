"""The losses with the requested metrics, and the aggregate that merges across batches."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scorer_client.metrics import classification as cls
from scorer_client.metrics.aggregate import (
    Aggregate,
    CalibrationSums,
    ClassCounts,
    CurveCounts,
    PerClassSums,
    TokenSums,
    TopKCounts,
)
from scorer_client.metrics.calibration import calibration_counts
from scorer_client.metrics.curves import curve_counts
from scorer_client.metrics.summary import metrics_of

from app.core._sigmoid import raise_first
from app.core.binary import score_binary_cross_entropy
from app.core.errors import InvalidOption, InvalidValue
from app.core.losses import score_cross_entropy
from app.core.metrics.options import MetricOptions
from app.core.metrics.sequences import SequenceMetrics, sequence_metrics
from app.core.options import LossOptions
from app.core.results import LossResult

__all__ = ["Evaluation", "evaluate_binary_cross_entropy", "evaluate_cross_entropy"]

MAX_BINS = 1000
MAX_CURVE_BINS = 100_000
# Curve counts are two int64 cells per class and bin: at most 16 MB of them.
MAX_CURVE_CELLS = 1_000_000
# Multiclass metrics with no meaning for independent binary labels.
_MULTICLASS_ONLY = ("top_k", "confusion", "per_class", "sequences")


@dataclass(frozen=True)
class Evaluation:
    """The loss result, the batch's aggregate, its metrics and per-sequence metrics."""

    result: LossResult
    aggregate: Aggregate
    metrics: dict[str, Any]
    sequences: SequenceMetrics | None


def check_metric_options(m: MetricOptions) -> None:
    """Reject option values that have no meaning, naming the option."""
    bins = m.calibration_bins
    if bins is not None and (isinstance(bins, bool) or not 1 <= bins <= MAX_BINS):
        raise InvalidOption(
            f"calibration_bins must be an integer in [1, {MAX_BINS}]; got {bins!r}",
            ("metrics", "calibration_bins"),
        )
    for i, k in enumerate(m.top_k):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidOption(
                f"top_k values must be integers >= 1; got {k!r}", ("metrics", "top_k", i)
            )
    if len(set(m.top_k)) != len(m.top_k):
        raise InvalidOption(
            f"top_k values must be distinct; got {list(m.top_k)}", ("metrics", "top_k")
        )
    t = m.threshold
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
        raise InvalidOption(
            f"threshold must be a number in [0, 1]; got {t!r}", ("metrics", "threshold")
        )
    cb = m.curve_bins
    if cb is not None and (isinstance(cb, bool) or not 1 <= cb <= MAX_CURVE_BINS):
        raise InvalidOption(
            f"curve_bins must be an integer in [1, {MAX_CURVE_BINS}]; got {cb!r}",
            ("metrics", "curve_bins"),
        )


def _check_curve_cells(m: MetricOptions, classes: int) -> None:
    if m.curve_bins is not None and classes * m.curve_bins > MAX_CURVE_CELLS:
        raise InvalidOption(
            f"curves need classes x curve_bins <= {MAX_CURVE_CELLS}; got {classes} x"
            f" {m.curve_bins}: ask for fewer curve_bins",
            ("metrics", "curve_bins"),
        )


def evaluate_cross_entropy(
    predictions: Any, labels: Any, opts: LossOptions, metrics: MetricOptions
) -> Evaluation:
    """:func:`score_cross_entropy` plus the metrics of ``metrics``, over scored samples.

    The truth is the class-index label, or ``argmax y`` for probability labels; the
    prediction is ``argmax p`` and the confidence ``max p`` of the softmax of
    ``logits / T`` (or of the given log_probs / probs). Metrics other than the loss are
    unweighted means over scored (non-ignored) samples, as the diagnostics are. The
    same :func:`metrics_of` turns this batch's aggregate, or a merge of many, into
    numbers, so a dataset scored in batches gets the numbers of one request.

    Example:
        >>> ev = evaluate_cross_entropy(np.array([[1.0, 2.0, 3.0], [3.0, 0.0, 0.0]]),
        ...     np.array([2, 1]), LossOptions(), MetricOptions(top_k=(1, 2)))
        >>> [t["accuracy"] for t in ev.metrics["top_k"]]
        [0.5, 1.0]
    """
    check_metric_options(metrics)
    # The prediction, its confidence and the true class's rank come from the kernel's
    # per-sample diagnostics: the same argmax as the accuracy, confidences as computed
    # (1/2 is 1/2, on its bin edge), ties ranked as argmax breaks them.
    extra: set[Any] = {"probs"} if metrics.brier or metrics.curve_bins else set()
    if metrics.sequences:
        extra.add("log_probs")
    result = score_cross_entropy(predictions, labels, _widened(opts, extra))
    assert result.diagnostics is not None
    ps = result.diagnostics.per_sample
    assert ps is not None
    lead = result.per_sample.shape
    axis = opts.axis % (len(lead) + 1)
    c = np.asarray(predictions).shape[axis]
    y = np.asarray(labels)
    target: NDArray[np.float64] | None = None
    if result.label_kind == "index":
        flat = y.reshape(-1)
        scored = (
            np.ones(flat.shape, bool) if opts.ignore_index is None else flat != opts.ignore_index
        )
        truth = np.where(scored, flat, 0).astype(np.intp)
        cw = opts.class_weights
        weight = np.ones(len(truth)) if cw is None else np.asarray(cw, np.float64)[truth]
    else:
        target = np.moveaxis(y, axis, -1).reshape(-1, c).astype(np.float64)
        truth = np.argmax(target, axis=1)
        scored = np.ones(len(truth), bool)
        weight = np.ones(len(truth))
    if opts.sample_weights is not None:
        weight = weight * np.broadcast_to(
            np.asarray(opts.sample_weights, np.float64), lead
        ).reshape(-1)
    _check_curve_cells(metrics, c)
    if metrics.confusion and c > metrics.confusion_max_classes:
        raise InvalidOption(
            f"a confusion matrix needs at most confusion_max_classes"
            f" ({metrics.confusion_max_classes}) classes; got {c}",
            ("metrics", "confusion"),
        )
    seq = None
    if metrics.sequences:
        if result.label_kind != "index" or len(lead) < 2:
            raise InvalidOption(
                "sequence metrics need class-index labels of shape [sequences, tokens, ...];"
                f" got labels of shape {y.shape}",
                ("metrics", "sequences"),
            )
        assert result.log_probs is not None
        lp = np.moveaxis(result.log_probs, axis, -1).reshape(-1, c)
        token_nll = -lp[np.arange(len(truth)), truth].astype(np.float64)
        seq = sequence_metrics(token_nll.reshape(lead), scored.reshape(lead))
    probs = None
    if result.probs is not None:
        probs = np.moveaxis(result.probs, axis, -1).reshape(-1, c)[scored]
    picks = Picks(
        pred=ps.predicted_class.reshape(-1)[scored],
        confidence=ps.confidence.reshape(-1)[scored].astype(np.float64),
        rank=ps.true_class_rank.reshape(-1)[scored],
        probs=probs,
    )
    aggregate = _aggregate(picks, truth[scored], target, scored, result, weight, metrics, c)
    if seq is not None:
        aggregate = dataclasses.replace(
            aggregate, sequences=TokenSums(seq.sequences, seq.token_count, seq.nll_sum)
        )
    return Evaluation(_as_asked(result, opts), aggregate, metrics_of(aggregate), seq)


@dataclass(frozen=True)
class Picks:
    """Per scored sample: predicted class, its probability, the true class's rank, ``p``."""

    pred: NDArray[np.int64]
    confidence: NDArray[np.float64]
    rank: NDArray[np.int64]
    probs: NDArray[np.floating] | None


def _aggregate(
    picks: Picks,
    truth: NDArray[np.intp],
    target: NDArray[np.float64] | None,
    scored: NDArray[np.bool_],
    result: LossResult,
    weight: NDArray[np.float64],
    m: MetricOptions,
    c: int,
) -> Aggregate:
    rows = np.arange(len(truth))
    pred, conf = picks.pred, picks.confidence
    correct = pred == truth
    loss = result.per_sample.reshape(-1)[scored].astype(np.float64)
    w = weight[scored]
    extra: dict[str, Any] = {}
    if m.brier:
        assert picks.probs is not None
        onehot = np.zeros(picks.probs.shape)
        onehot[rows, truth] = 1.0
        truth_p = onehot if target is None else target[scored]
        extra["brier_sum"] = float(np.sum(cls.brier_terms(picks.probs, truth_p)))
    if m.calibration_bins is not None:
        extra["calibration"] = CalibrationSums(
            *calibration_counts(conf, correct, m.calibration_bins)
        )
    if m.top_k:
        extra["top_k"] = TopKCounts(tuple(m.top_k), cls.top_k_correct(picks.rank, tuple(m.top_k)))
    if m.confusion:
        extra["confusion"] = cls.confusion_counts(truth, pred, c)
    if m.per_class:
        extra["per_class"] = PerClassSums(*cls.per_class_sums(truth, correct, loss, w, c))
    if m.loss_histogram:
        extra["loss_histogram"] = cls.loss_histogram(loss)
    if m.classification:
        extra["classification"] = ClassCounts(None, *cls.one_vs_rest_counts(truth, pred, c))
    if m.curve_bins is not None:
        assert picks.probs is not None
        is_class: NDArray[np.bool_] = np.zeros(picks.probs.shape, bool)
        is_class[rows, truth] = True
        p = picks.probs.astype(np.float64)
        extra["curves"] = CurveCounts(*curve_counts(p, is_class, m.curve_bins))
    return Aggregate(
        classes=c,
        count=len(truth),
        correct=int(np.count_nonzero(correct)),
        loss_sum=result.loss_sum,
        total_weight=result.total_weight,
        confidence_sum=float(np.sum(conf)),
        **extra,
    )


def evaluate_binary_cross_entropy(
    predictions: Any, labels: Any, opts: LossOptions, metrics: MetricOptions
) -> Evaluation:
    """:func:`score_binary_cross_entropy` plus the metrics of ``metrics``, per element.

    Each element is a yes/no question: a vector ``[N]`` is one class (the positive one),
    ``[N, C]`` (class axis ``opts.axis``) is ``C`` label columns (multi-label). With
    ``p`` the probability the response reports (``sigmoid(x / T)``) and ``y`` the label:
    classification counts the decisions ``p > threshold`` per column; curves bin ``p``
    per column (:mod:`scorer_client.metrics.curves`); calibration bins ``p`` of every
    element, so a bin's "accuracy" is its fraction of positives; Brier is the mean
    ``(p - y)^2``. These four need labels 0 or 1; elements labelled ``ignore_index``
    are left out of every metric. ``count``, ``correct`` and ``confidence_sum`` are
    the diagnostics' (decision ``p > 1/2`` on the logit's sign, confidence
    ``max(p, 1 - p)``).

    Example:
        >>> ev = evaluate_binary_cross_entropy(np.array([2.0, -1.0, 0.5]),
        ...     np.array([1.0, 0.0, 0.0]), LossOptions(), MetricOptions(classification=True))
        >>> c = ev.metrics["classification"]
        >>> c["precision"], c["recall"], ev.metrics["accuracy"]
        ([0.5], [1.0], 0.6666666666666666)
    """
    check_metric_options(metrics)
    for name in _MULTICLASS_ONLY:
        if getattr(metrics, name):
            raise InvalidOption(
                f"{name} is a metric of softmax cross-entropy; binary and multi-label"
                " labels have classification and curves",
                ("metrics", name),
            )
    result = score_binary_cross_entropy(predictions, labels, _widened(opts, {"probs"}))
    assert result.diagnostics is not None
    assert result.probs is not None
    ps = result.diagnostics.per_sample
    assert ps is not None
    shape = result.per_sample.shape
    axis = opts.axis % len(shape) if len(shape) > 1 else 0

    def columns(a: Any) -> NDArray[Any]:
        # [n, C] with the label columns last; a vector or a scalar is one column.
        out: NDArray[Any] = np.reshape(a, shape)
        if len(shape) <= 1:
            return out.reshape(-1, 1)
        return np.moveaxis(out, axis, -1).reshape(-1, shape[axis])

    y_given = np.asarray(labels)
    y = columns(y_given)
    ii = opts.ignore_index
    scored = np.ones(y.shape, bool) if ii is None else y != ii
    hard = metrics.classification or metrics.curve_bins or metrics.brier
    if hard or metrics.calibration_bins is not None:
        bad = ~((y_given == 0) | (y_given == 1))
        if ii is not None:
            bad &= y_given != ii
        if bad.any():
            raise_first(
                InvalidValue, y_given, bad, "labels",
                "0 or 1 for classification, curves, calibration and brier (soft labels"
                " score the loss and its aggregate only)",
            )  # fmt: skip
    c = y.shape[1]
    _check_curve_cells(metrics, c)
    # Given probabilities as given: the loss clips them to [eps, 1 - eps], which would
    # make a p of 0 a positive at threshold 0 and move scores within a curve bin.
    given = opts.input_kind == "probs"
    p = columns(np.asarray(predictions) if given else result.probs).astype(np.float64)
    truth = y == 1
    extra: dict[str, Any] = {}
    if metrics.brier:
        extra["brier_sum"] = float(np.sum(np.square(p - y)[scored]))
    if metrics.calibration_bins is not None:
        extra["calibration"] = CalibrationSums(
            *calibration_counts(p[scored], truth[scored], metrics.calibration_bins)
        )
    if metrics.classification:
        t = float(metrics.threshold)
        extra["classification"] = ClassCounts(t, *cls.decision_counts(p > t, truth, scored))
    if metrics.curve_bins is not None:
        extra["curves"] = CurveCounts(*curve_counts(p, truth, metrics.curve_bins, scored))
    if metrics.loss_histogram:
        loss = columns(result.per_sample)[scored].astype(np.float64)
        extra["loss_histogram"] = cls.loss_histogram(loss)
    decided = columns(ps.predicted_class) == (y >= 0.5)
    aggregate = Aggregate(
        classes=c,
        count=int(np.count_nonzero(scored)),
        correct=int(np.count_nonzero(decided & scored)),
        loss_sum=result.loss_sum,
        total_weight=result.total_weight,
        confidence_sum=float(np.sum(columns(ps.confidence)[scored], dtype=np.float64)),
        task="binary",
        **extra,
    )
    return Evaluation(_as_asked(result, opts), aggregate, metrics_of(aggregate), None)


def _widened(opts: LossOptions, outputs: set[Any]) -> LossOptions:
    """``opts`` asking also for ``outputs`` and the per-sample diagnostics the metrics read."""
    return dataclasses.replace(
        opts, outputs=opts.outputs | outputs, diagnostics=True, per_sample_diagnostics=True
    )


def _as_asked(result: LossResult, opts: LossOptions) -> LossResult:
    """``result`` of :func:`_widened` options cut back to what ``opts`` asked for."""
    diagnostics = None
    if opts.diagnostics:
        assert result.diagnostics is not None
        keep = result.diagnostics.per_sample if opts.per_sample_diagnostics else None
        diagnostics = dataclasses.replace(result.diagnostics, per_sample=keep)
    return dataclasses.replace(
        result,
        probs=result.probs if "probs" in opts.outputs else None,
        log_probs=result.log_probs if "log_probs" in opts.outputs else None,
        diagnostics=diagnostics,
    )
