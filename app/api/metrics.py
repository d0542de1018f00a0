"""Evaluation metrics between the options models and the core: bodies, merge, report input.

Only requests that ask for ``metrics`` come here; the default scoring path never does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.api.errors import OptionsInvalid
from app.api.metric_schemas import MergeRequest, MetricsOptions
from app.api.schemas import CrossEntropyOptions
from app.codecs import DecodedArray, DecodedBody, Tensor
from app.core import LossOptions
from app.core.metrics import (
    Evaluation,
    MetricOptions,
    aggregate_metrics,
    evaluate_cross_entropy,
    merge_aggregates,
    to_wire,
)

__all__ = ["add_metrics", "core_metric_options", "evaluate", "merge_body", "report_metrics"]

LossInputs = Callable[
    [CrossEntropyOptions, dict[str, DecodedArray]],
    tuple[DecodedArray, np.ndarray[Any, Any], LossOptions],
]
_PARTS = ("calibration", "brier", "top_k", "confusion", "per_class", "loss_histogram", "sequences")
REPORT_TOP_K = (1, 5)


def core_metric_options(m: MetricsOptions) -> MetricOptions:
    """The core's options; setting ``calibration_bins`` asks for calibration."""
    calibrate = m.calibration or "calibration_bins" in m.model_fields_set
    return MetricOptions(
        calibration_bins=m.calibration_bins if calibrate else None,
        brier=m.brier,
        top_k=tuple(m.top_k),
        confusion=m.confusion,
        confusion_max_classes=m.confusion_max_classes,
        per_class=m.per_class,
        sequences=m.sequences,
        loss_histogram=m.loss_histogram,
    )


def evaluate(predictions: Any, labels: Any, opts: LossOptions, m: MetricsOptions) -> Evaluation:
    """Cross-entropy with the metrics of ``m``."""
    return evaluate_cross_entropy(predictions, labels, opts, core_metric_options(m))


def add_metrics(
    body: dict[str, Any], evaluation: Evaluation, m: MetricsOptions, tensor: bool
) -> dict[str, Any]:
    """Put the requested metrics into ``body["diagnostics"]`` and, if asked, the aggregate."""
    diagnostics = body.get("diagnostics")
    if diagnostics is not None:
        found = evaluation.metrics
        diagnostics.update({k: found[k] for k in _PARTS if k in found})
        seq = evaluation.sequences
        if seq is not None:
            wrap = Tensor if tensor else (lambda a: a)
            diagnostics["sequences"]["per_sequence"] = {
                "tokens": wrap(seq.tokens),
                "nll": wrap(seq.nll),
                "perplexity": wrap(seq.perplexity),
            }
    if m.aggregate:
        body["aggregate"] = to_wire(evaluation.aggregate)
    return body


def merge_body(
    options: MergeRequest, arrays: dict[str, DecodedArray], threads: int = 1
) -> dict[str, Any]:
    """Dataset-level metrics of the merged aggregates, with the merged aggregate."""
    merged = merge_aggregates(options.aggregates)
    return {**aggregate_metrics(merged), "aggregate": to_wire(merged)}


def report_metrics(decoded: DecodedBody, loss_inputs: LossInputs) -> dict[str, Any]:
    """The metrics a report shows: of merged ``aggregates``, or of a cross-entropy body.

    A cross-entropy body gets calibration (its ``calibration_bins``, default 15),
    Brier, top-1 and top-5, per-class numbers and the loss histogram on top of the
    metrics it asks for. ``loss_inputs`` is the cross-entropy route's reading of its
    fields (:func:`app.api.endpoints.loss_inputs`, passed in: that module imports this).
    """
    if "aggregates" in decoded.options:
        try:
            merge = MergeRequest.model_validate(decoded.options)
        except ValidationError as exc:
            raise OptionsInvalid.from_pydantic(exc) from exc
        return aggregate_metrics(merge_aggregates(merge.aggregates))
    values = {k: v for k, v in decoded.options.items() if v is not None}
    try:
        options = CrossEntropyOptions.model_validate(values)
    except ValidationError as exc:
        raise OptionsInvalid.from_pydantic(exc) from exc
    predictions, labels, loss_options = loss_inputs(options, decoded.arrays)
    pred = predictions.array
    asked = options.metrics or MetricsOptions()
    core = core_metric_options(asked)
    shape = np.shape(pred)
    # A scalar, or an axis past the rank, has no classes: the core names that error below.
    axis = loss_options.axis
    classes = int(shape[axis]) if -len(shape) <= axis < len(shape) else 0
    metric_options = MetricOptions(
        calibration_bins=core.calibration_bins or asked.calibration_bins,
        brier=True,
        top_k=tuple(sorted({*core.top_k, *(k for k in REPORT_TOP_K if k <= classes)})),
        confusion=core.confusion,
        confusion_max_classes=core.confusion_max_classes,
        per_class=True,
        sequences=core.sequences,
        loss_histogram=True,
    )
    return evaluate_cross_entropy(pred, labels, loss_options, metric_options).metrics
