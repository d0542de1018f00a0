"""Pydantic models of the evaluation metrics: the ``metrics`` option, results, aggregates.

Like :mod:`app.api.schemas`, they validate options and describe the API in OpenAPI;
aggregates are checked by :mod:`app.core.metrics` (which names the offending field).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AggregateModel",
    "CalibrationModel",
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
        default=False, description="ECE, MCE, RMS and the reliability diagram (default 15 bins)."
    )
    calibration_bins: int = Field(
        default=15,
        ge=1,
        le=1000,
        description="Equal-width confidence bins; setting it also asks for calibration.",
    )
    brier: bool = Field(default=False, description="Multiclass Brier score.")
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


class _CalibrationSums(BaseModel):
    count: list[int]
    confidence_sum: list[float]
    correct: list[int]


class _TopKCounts(BaseModel):
    k: list[int]
    correct: list[int]


class _PerClassSums(BaseModel):
    support: list[int]
    correct: list[int]
    loss_sum: list[Number]
    weight: list[float]


class _TokenSums(BaseModel):
    sequences: int
    tokens: int
    nll_sum: Number


class AggregateModel(BaseModel):
    """Sufficient statistics of a batch's metrics; parts not asked for are absent."""

    format: str = Field(default="scorer.aggregate/1")
    classes: int
    count: int
    correct: int
    loss_sum: Number
    total_weight: float
    confidence_sum: float
    brier_sum: float | None = None
    calibration: _CalibrationSums | None = None
    top_k: _TopKCounts | None = None
    confusion: list[list[int]] | None = None
    per_class: _PerClassSums | None = None
    loss_histogram: list[int] | None = None
    sequences: _TokenSums | None = None


class MergeRequest(_Strict):
    """Aggregates from any number of responses, all with the same metrics."""

    # Checked by the core (which names the field); described as AggregateModel items.
    aggregates: list[dict[str, Any]] = Field(
        min_length=1,
        description="Each the `aggregate` of a response.",
        json_schema_extra={"items": {"$ref": f"#/components/schemas/{AggregateModel.__name__}"}},
    )


class DatasetMetrics(BaseModel):
    """Dataset-level metrics of merged aggregates, and the merged aggregate itself."""

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
    aggregate: AggregateModel
