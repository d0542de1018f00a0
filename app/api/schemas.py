"""Pydantic models: the options they validate and the API they describe in OpenAPI.

Arrays never pass through these models at run time (the codecs hand them to NumPy);
the array fields exist here so that the OpenAPI document describes the whole body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.metric_schemas import (
    AggregateModel,
    CalibrationModel,
    ClassificationModel,
    CurvesModel,
    LossHistogramModel,
    MetricsOptions,
    PerClassModel,
    SequencesModel,
    TopKModel,
)

__all__ = [
    "PREDICTION_FIELDS",
    "BinaryCrossEntropyOptions",
    "BinaryCrossEntropyRequest",
    "CrossEntropyOptions",
    "CrossEntropyRequest",
    "DiagnosticsModel",
    "LossResponse",
    "NumericalDiagnosticsModel",
    "PerSampleDiagnosticsModel",
    "Problem",
    "ProblemItem",
    "SoftmaxOptions",
    "SoftmaxRequest",
    "SoftmaxResponse",
    "TensorPayload",
]

ARRAY_DOC = (
    "Nested lists of numbers (row-major; the strings 'inf', '-inf', 'nan' stand for "
    "non-finite values in JSON), or a typed tensor."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TensorPayload(_Strict):
    """A typed tensor: raw little-endian bytes in C order, no per-element encoding."""

    dtype: Literal["float16", "float32", "float64", "int32", "int64"]
    shape: list[int] = Field(description="Dimensions, each >= 0.")
    data: str = Field(
        description="prod(shape) * itemsize bytes: msgpack bin, or base64 in JSON.",
        json_schema_extra={"contentEncoding": "base64"},
    )


NumericArray = list[Any] | TensorPayload
NumericArrayOrScalar = list[Any] | TensorPayload | float


class _PredictionOptions(_Strict):
    temperature: float = Field(
        default=1.0, gt=0, allow_inf_nan=False, description="Logits are divided by it first."
    )
    axis: int = Field(default=-1, description="The class axis of the predictions.")
    precision: Literal["float32", "float64"] | None = Field(
        default=None,
        description="Compute precision; default float32 for float16/float32 tensors, else float64.",
    )
    diagnostics: bool = Field(default=True, description="Return batch diagnostics.")


class _LossOptions(_PredictionOptions):
    reduction: Literal["none", "sum", "mean"] = "mean"
    ignore_index: int | None = Field(
        default=None, description="Labels equal to it score 0 and count for nothing."
    )
    label_smoothing: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    outputs: list[Literal["per_sample", "probs", "log_probs"]] = Field(
        default=["per_sample"], description="Which arrays to return."
    )
    per_sample_diagnostics: bool = Field(
        default=False, description="Add per-sample diagnostics arrays to the diagnostics."
    )


class CrossEntropyOptions(_LossOptions):
    """Options of softmax cross-entropy."""

    metrics: MetricsOptions | None = Field(
        default=None, description="Evaluation metrics to add to the diagnostics."
    )


class BinaryCrossEntropyOptions(_LossOptions):
    """Options of sigmoid (binary, multi-label) cross-entropy."""

    metrics: MetricsOptions | None = Field(
        default=None,
        description="Evaluation metrics to add to the diagnostics, per element: "
        "classification, curves, calibration, brier, loss_histogram, aggregate.",
    )


class SoftmaxOptions(_PredictionOptions):
    """Options of softmax."""

    outputs: list[Literal["probs", "log_probs", "logsumexp"]] = Field(
        default=["probs"], description="Which arrays to return."
    )


class _Predictions(BaseModel):
    logits: NumericArray | None = Field(default=None, description=ARRAY_DOC)
    log_probs: NumericArray | None = Field(
        default=None, description="Log-probabilities instead of logits. " + ARRAY_DOC
    )
    probs: NumericArray | None = Field(
        default=None, description="Probabilities instead of logits (clipped as sklearn). "
    )


# The prediction fields, in the order the routes look for them: exactly one is given.
PREDICTION_FIELDS = tuple(_Predictions.model_fields)


class CrossEntropyRequest(CrossEntropyOptions, _Predictions):
    """Softmax cross-entropy request: exactly one of logits, log_probs, probs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "logits": [[1.0, 2.0, 3.0], [2.5, 0.5, -1.0]],
                    "labels": [2, 0],
                    "metrics": {"calibration": True, "top_k": [1, 2], "aggregate": True},
                }
            ]
        }
    )

    labels: NumericArray = Field(
        description="Class indices (shape of the predictions without the class axis) or "
        "probabilities (shape of the predictions). " + ARRAY_DOC
    )
    class_weights: NumericArray | None = Field(default=None, description="One per class.")
    sample_weights: NumericArray | None = Field(
        default=None, description="One per loss element, or broadcastable to them."
    )


class BinaryCrossEntropyRequest(BinaryCrossEntropyOptions, _Predictions):
    """Sigmoid cross-entropy request: labels in [0, 1] with the predictions' shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "logits": [[2.0, -1.0], [0.3, 0.8], [-1.2, 2.2]],
                    "labels": [[1, 0], [0, 1], [0, 1]],
                    "metrics": {"classification": True, "curves": True, "curve_bins": 100},
                }
            ]
        }
    )

    labels: NumericArray = Field(description="Targets in [0, 1]. " + ARRAY_DOC)
    pos_weight: NumericArrayOrScalar | None = Field(
        default=None, description="Weight of positives: a number or one per class."
    )
    sample_weights: NumericArray | None = Field(
        default=None, description="One per element, or broadcastable to them."
    )


class SoftmaxRequest(SoftmaxOptions):
    """Softmax request."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"logits": [[1.0, 2.0, 3.0]], "outputs": ["probs"]}]}
    )

    logits: NumericArray = Field(description=ARRAY_DOC)


class NumericalDiagnosticsModel(BaseModel):
    """What a textbook exp/sum/log would have done to this batch."""

    max_abs_logit: float
    overflow_rows: int
    underflow_rows: int
    zero_probs: int


class PerSampleDiagnosticsModel(BaseModel):
    """Per-sample diagnostics, each with the per-sample shape."""

    predicted_class: NumericArray
    confidence: NumericArray
    true_class_prob: NumericArray
    margin: NumericArray
    true_class_rank: NumericArray
    entropy: NumericArray


class DiagnosticsModel(BaseModel):
    """Batch diagnostics over the scored (non-ignored) samples."""

    count: int
    accuracy: float | None
    mean_confidence: float | None
    mean_entropy: float | None
    mean_true_class_prob: float | None
    numerical: NumericalDiagnosticsModel
    per_sample: PerSampleDiagnosticsModel | None = None
    calibration: CalibrationModel | None = None
    brier: float | None = None
    top_k: list[TopKModel] | None = None
    confusion: list[list[int]] | None = None
    per_class: PerClassModel | None = None
    loss_histogram: LossHistogramModel | None = None
    sequences: SequencesModel | None = None
    classification: ClassificationModel | None = None
    curves: CurvesModel | None = None


class Shapes(BaseModel):
    """Shapes of the inputs and of the per-sample output."""

    predictions: list[int]
    labels: list[int] | None = None
    per_sample: list[int]


class LossResponse(BaseModel):
    """A cross-entropy result; arrays come as tensors when the request used tensors."""

    loss: float | str | None = Field(description="Null with reduction none; 'inf' if infinite.")
    reduction: Literal["none", "sum", "mean"]
    loss_sum: float | str = Field(description="Sum of the per-sample losses.")
    total_weight: float = Field(description="Denominator of the mean.")
    label_kind: Literal["index", "probability", "binary"]
    precision: Literal["float32", "float64"]
    shapes: Shapes
    per_sample: NumericArray | None = None
    probs: NumericArray | None = None
    log_probs: NumericArray | None = None
    diagnostics: DiagnosticsModel | None
    aggregate: AggregateModel | None = Field(
        default=None, description="With metrics.aggregate: sums for POST /v1/aggregates/merge."
    )


class SoftmaxResponse(BaseModel):
    """A softmax result."""

    precision: Literal["float32", "float64"]
    shapes: Shapes
    probs: NumericArray | None = None
    log_probs: NumericArray | None = None
    logsumexp: NumericArray | None = None
    diagnostics: DiagnosticsModel | None


class ProblemItem(BaseModel):
    """One error: where (``loc``, e.g. ``["logits", 3, 7]``) and what."""

    loc: list[str | int]
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details with the list of errors."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemItem] = Field(default_factory=list)
