"""Pydantic models of the evaluation metrics: the ``metrics`` option, results, aggregates.

Like :mod:`app.api.schemas`, they validate options and describe the API in OpenAPI;
aggregates are checked by :mod:`app.core.metrics` (which names the offending field).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AggregateModel",
    "CalibrationModel",
    "ClassificationModel",
    "CurvesModel",
    "DatasetMetrics",
    "MergeRequest",
    "MetricsOptions",
    "PerClassModel",
    "SequencesModel",
    "TopKModel",
]

Number = float | str  # 'inf', '-inf', 'nan' in JSON
NumberOrNone = float | str | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MetricsOptions(_Strict):
    """Evaluation metrics to add to the diagnostics; each is off unless asked for."""

    calibration: bool = Field(
        default=False,
        description="ECE, MCE, RMS and the reliability diagram (default 15 bins): of the "
        "top-label confidence (cross-entropy) or of every element's p (binary-cross-entropy, "
        "where a bin's accuracy is its fraction of positives).",
    )
    calibration_bins: int = Field(
        default=15,
        ge=1,
        le=1000,
        description="Equal-width confidence bins; setting it also asks for calibration.",
    )
    brier: bool = Field(
        default=False,
        description="Brier score: multiclass (cross-entropy) or the mean (p - y)^2 per element.",
    )
    top_k: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, max_length=32, description="k values of top-k accuracy."
    )
    confusion: bool = Field(default=False, description="Confusion matrix (true x predicted).")
    confusion_max_classes: int = Field(
        default=100, ge=1, le=1024, description="Refuse a confusion matrix above this many classes."
    )
    per_class: bool = Field(default=False, description="Per-class support, accuracy, mean loss.")
    sequences: bool = Field(
        default=False,
        description="Per-sequence and token-level NLL and perplexity ([N, T, C] logits).",
    )
    loss_histogram: bool = Field(
        default=False, description="Counts of per-sample losses over fixed log-spaced bins."
    )
    classification: bool = Field(
        default=False,
        description="Per-class precision, recall, F1 and support, and their macro, micro and "
        "weighted means (scikit-learn's, zero_division 0): of the decisions p > threshold "
        "(binary-cross-entropy) or of the argmax, one class against the rest (cross-entropy).",
    )
    threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A positive decision is a probability above it (binary-cross-entropy).",
    )
    curves: bool = Field(
        default=False,
        description="ROC and precision-recall curves per class, ROC AUC and average precision "
        "with a bound on their distance to the exact values (default 1000 bins).",
    )
    curve_bins: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Equal-width probability bins of the curves; setting it also asks for "
        "curves. classes x curve_bins may be at most 1000000.",
    )
    aggregate: bool = Field(
        default=False,
        description="Return `aggregate`: the sums that POST /v1/aggregates/merge combines.",
    )


class ReliabilityBin(BaseModel):
    """One confidence bin [lower, upper) (the last one includes 1)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


class CalibrationModel(BaseModel):
    """Calibration of the top-label confidence; null errors when nothing is scored."""

    bins: int
    ece: float | None
    mce: float | None
    rms: float | None
    reliability: list[ReliabilityBin]


class TopKModel(BaseModel):
    """Fraction of samples whose true class is among the k most probable."""

    k: int
    accuracy: float | None


class PerClassModel(BaseModel):
    """Per true class; null where a class has no support (or no weight)."""

    support: list[int]
    accuracy: list[float | None]
    mean_loss: list[NumberOrNone]


class LossHistogramModel(BaseModel):
    """Per-sample losses over fixed bins [edge_i, edge_i+1) (the last edge is 'inf')."""

    edges: list[Number]
    count: list[int]


class PerSequenceModel(BaseModel):
    """Per sequence ([N]): scored tokens, mean NLL and perplexity (NaN without tokens)."""

    tokens: list[Any] | dict[str, Any]
    nll: list[Any] | dict[str, Any]
    perplexity: list[Any] | dict[str, Any]


class SequencesModel(BaseModel):
    """Token-level NLL and perplexity = exp(token-weighted mean NLL)."""

    count: int
    tokens: int
    nll: NumberOrNone
    perplexity: NumberOrNone
    per_sequence: PerSequenceModel | None = None


class AveragedScores(BaseModel):
    """Precision, recall and F1 averaged over classes."""

    precision: float
    recall: float
    f1: float


class ClassificationModel(BaseModel):
    """Per class and averaged; 0 where a denominator is 0 (scikit-learn's zero_division 0)."""

    threshold: float | None = Field(description="Null for one vs rest on the argmax.")
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    macro: AveragedScores
    micro: AveragedScores
    weighted: AveragedScores


class RocCurve(BaseModel):
    """From the highest threshold down; the first point is (0, 0) at threshold 'inf'."""

    thresholds: list[Number]
    fpr: list[float]
    tpr: list[float]


class PrecisionRecallCurve(BaseModel):
    """From the highest threshold down; the first point is recall 0, precision 1."""

    thresholds: list[Number]
    precision: list[float]
    recall: list[float]


class CurvesModel(BaseModel):
    """Per class, from binned probabilities; the exact value is within area +- its bound."""

    bins: int
    roc_auc: list[float | None]
    roc_auc_bound: list[float | None]
    average_precision: list[float | None]
    average_precision_bound: list[float | None]
    macro_roc_auc: float | None
    macro_average_precision: float | None
    roc: list[RocCurve]
    pr: list[PrecisionRecallCurve]


class CalibrationSums(BaseModel):
    """Per confidence bin: samples, sum of confidences, correct (binary: positives)."""

    count: list[int]
    confidence_sum: list[float]
    correct: list[int]


class TopKCounts(BaseModel):
    """Per k: samples whose true class ranks within k."""

    k: list[int]
    correct: list[int]


class PerClassSums(BaseModel):
    """Per true class: support, correct, sum of losses and of their weights."""

    support: list[int]
    correct: list[int]
    loss_sum: list[Number]
    weight: list[float]


class TokenSums(BaseModel):
    """Sequences, scored tokens, and the sum of their negative log-likelihoods."""

    sequences: int
    tokens: int
    nll_sum: Number


class ClassCounts(BaseModel):
    """Per class: true and false positives, false and true negatives."""

    threshold: float | None
    tp: list[int]
    fp: list[int]
    fn: list[int]
    tn: list[int]


class CurveCounts(BaseModel):
    """Per class and probability bin ([classes, bins]): positives and negatives."""

    positives: list[list[int]]
    negatives: list[list[int]]


class AggregateModel(BaseModel):
    """Sufficient statistics of a batch's metrics; parts not asked for are absent."""

    format: str = Field(default="scorer.aggregate/1")
    task: Literal["multiclass", "binary"] = Field(
        default="multiclass",
        description="multiclass (cross-entropy, counts of samples) or binary (sigmoid "
        "cross-entropy, counts of elements); aggregates merge only with their own task.",
    )
    classes: int
    count: int
    correct: int
    loss_sum: Number
    total_weight: float
    confidence_sum: float
    brier_sum: float | None = None
    calibration: CalibrationSums | None = None
    top_k: TopKCounts | None = None
    confusion: list[list[int]] | None = None
    per_class: PerClassSums | None = None
    loss_histogram: list[int] | None = None
    sequences: TokenSums | None = None
    classification: ClassCounts | None = None
    curves: CurveCounts | None = None


class MergeRequest(_Strict):
    """Aggregates from any number of responses, all with the same metrics."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "aggregates": [
                        {
                            "format": "scorer.aggregate/1",
                            "classes": 3,
                            "count": 2,
                            "correct": 1,
                            "loss_sum": 1.9,
                            "total_weight": 2.0,
                            "confidence_sum": 1.3,
                        },
                        {
                            "format": "scorer.aggregate/1",
                            "classes": 3,
                            "count": 1,
                            "correct": 1,
                            "loss_sum": 0.4,
                            "total_weight": 1.0,
                            "confidence_sum": 0.67,
                        },
                    ]
                }
            ]
        }
    )

    # Checked by the core (which names the field); described as AggregateModel items.
    aggregates: list[dict[str, Any]] = Field(
        min_length=1,
        description="Each the `aggregate` of a response.",
        json_schema_extra={"items": {"$ref": f"#/components/schemas/{AggregateModel.__name__}"}},
    )


class DatasetMetrics(BaseModel):
    """Dataset-level metrics of merged aggregates, and the merged aggregate itself."""

    task: Literal["multiclass", "binary"]
    classes: int
    count: int
    loss: NumberOrNone
    loss_sum: Number
    total_weight: float
    accuracy: float | None
    mean_confidence: float | None
    brier: float | None = None
    calibration: CalibrationModel | None = None
    top_k: list[TopKModel] | None = None
    confusion: list[list[int]] | None = None
    per_class: PerClassModel | None = None
    loss_histogram: LossHistogramModel | None = None
    sequences: SequencesModel | None = None
    classification: ClassificationModel | None = None
    curves: CurvesModel | None = None
    aggregate: AggregateModel
