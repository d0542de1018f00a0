"""The evaluation-metrics routes: dataset-level metrics from merged aggregates, and the report.

Both read a JSON or msgpack body through the pipeline. The merge answers in the
negotiated codec; the report draws its metrics as an HTML page or an SVG diagram.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from scorer_client.report import HTML, REPORT_MEDIA_TYPES, SVG, render
from starlette.responses import Response

from app.api.errors import InvalidFields
from app.api.metric_schemas import DatasetMetrics, MergeRequest, MetricsOptions
from app.api.openapi import error_responses, one_of_body, request_body, response_body
from app.api.pipeline import Answer, serve_body
from app.api.schemas import CrossEntropyOptions, CrossEntropyRequest
from app.api.scoring import CROSS_ENTROPY, core_metric_options, loss_inputs
from app.codecs import DecodedBody, NotAcceptable
from app.core.metrics import (
    MetricOptions,
    aggregate_metrics,
    evaluate_cross_entropy,
    merge_aggregates,
    to_wire,
)

__all__ = ["MODELS", "media_type_for_accept", "merge_body", "report_metrics", "router"]

router = APIRouter(prefix="/v1", tags=["metrics"])
# The models this module's routes refer to in the OpenAPI document.
MODELS: tuple[type[BaseModel], ...] = (MergeRequest, DatasetMetrics, CrossEntropyRequest)
REPORT_TOP_K = (1, 5)


@router.post(
    "/aggregates/merge",
    operation_id="mergeAggregates",
    summary="Dataset-level metrics from the aggregates of many responses",
    response_class=Response,
    openapi_extra=request_body(MergeRequest),
    responses=response_body(DatasetMetrics),
)
async def merge(request: Request) -> Response:
    """Add the aggregates of any number of responses and return dataset-level metrics."""
    answer = await serve_body(request.scope, request.receive, frozenset(), merge_body)
    return _response(answer)


@router.post(
    "/report",
    operation_id="report",
    summary="A visual report: reliability diagram, histograms, per-class accuracy",
    response_class=Response,
    openapi_extra=one_of_body(CrossEntropyRequest, MergeRequest),
    responses={
        200: {
            "description": "A self-contained HTML page, or the reliability diagram alone"
            " (Accept: image/svg+xml)",
            "content": {media: {"schema": {"type": "string"}} for media in REPORT_MEDIA_TYPES},
        },
        **error_responses(),
    },
)
async def report(request: Request) -> Response:
    """A report of a cross-entropy request's metrics, or of merged aggregates."""
    media_type = media_type_for_accept(request.headers.get("accept"))

    def draw(metrics: Any) -> bytes:
        return render(dict(metrics), media_type)

    answer = await serve_body(
        request.scope,
        request.receive,
        CROSS_ENTROPY.array_fields,
        report_metrics,
        render=(draw, media_type),
    )
    return _response(answer)


def _response(answer: Answer) -> Response:
    return Response(b"".join(answer.parts), media_type=answer.media_type)


def _merge_request(options: dict[str, Any]) -> MergeRequest:
    try:
        return MergeRequest.model_validate(options)
    except ValidationError as exc:
        raise InvalidFields.from_pydantic(exc) from exc


def merge_body(decoded: DecodedBody, threads: int = 1) -> dict[str, Any]:
    """Dataset-level metrics of the merged aggregates, with the merged aggregate."""
    merged = merge_aggregates(_merge_request(decoded.options).aggregates)
    return {**aggregate_metrics(merged), "aggregate": to_wire(merged)}


def report_metrics(decoded: DecodedBody, threads: int = 1) -> dict[str, Any]:
    """The metrics a report shows: of merged ``aggregates``, or of a cross-entropy body.

    A cross-entropy body gets calibration (its ``calibration_bins``, default 15),
    Brier, top-1 and top-5, per-class numbers and the loss histogram on top of the
    metrics it asks for.
    """
    if "aggregates" in decoded.options:
        return aggregate_metrics(merge_aggregates(_merge_request(decoded.options).aggregates))
    values = {k: v for k, v in decoded.options.items() if v is not None}
    try:
        options = CrossEntropyOptions.model_validate(values)
    except ValidationError as exc:
        raise InvalidFields.from_pydantic(exc) from exc
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


def media_type_for_accept(value: str | None) -> str:
    """``text/html`` or ``image/svg+xml``, as Accept prefers (RFC 9110 section 12.5.1).

    Each type takes the q of the most specific range that matches it; the higher q
    wins and HTML (the whole report) wins ties. No header means HTML.

    Raises:
        NotAcceptable: Accept rules out both.
    """
    if value is None or not value.strip():
        return HTML
    quality = {HTML: (0, 0.0), SVG: (0, 0.0)}  # (specificity, q) of the best match
    for part in value.split(","):
        name, *params = (p.strip().lower() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        for media in quality:
            rank = _match(name, media)
            if rank > quality[media][0]:
                quality[media] = (rank, q)
    best = max((HTML, SVG), key=lambda m: (quality[m][1], m == HTML))
    if quality[best][1] <= 0:
        raise NotAcceptable(value, REPORT_MEDIA_TYPES)
    return best


def _match(media_range: str, media: str) -> int:
    """3 for the exact type, 2 for ``type/*``, 1 for ``*/*``, 0 for no match."""
    if media_range == media:
        return 3
    if media_range == media.split("/")[0] + "/*":
        return 2
    return 1 if media_range in ("*/*", "*") else 0
