"""Routes of the evaluation metrics: merging aggregates and the visual report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.endpoints import CROSS_ENTROPY, Endpoint, loss_inputs
from app.api.metric_schemas import MergeRequest
from app.api.metrics import merge_body, report_metrics
from app.api.openapi import error_responses, request_body, response_body
from app.api.schemas import CrossEntropyOptions
from app.api.serving import serve
from app.codecs import Codec, DecodedBody
from app.report import REPORT_MEDIA_TYPES, media_type_for_accept, render

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["metrics"])

MERGE = Endpoint(MergeRequest, frozenset(), merge_body)


@router.post(
    "/aggregates/merge",
    operation_id="mergeAggregates",
    summary="Dataset-level metrics from the aggregates of many responses",
    response_class=Response,
    openapi_extra=request_body("MergeRequest"),
    responses=response_body("DatasetMetrics"),
)
async def merge_aggregates(request: Request) -> Response:
    """Add the aggregates of any number of responses and return dataset-level metrics."""
    return await _respond(request, MERGE)


@dataclass(frozen=True)
class _ReportEndpoint(Endpoint):
    """Cross-entropy input (or aggregates) in, the metrics a report shows out."""

    def compute(self, decoded: DecodedBody, threads: int = 1) -> dict[str, Any]:
        return report_metrics(decoded, loss_inputs)


@dataclass
class _Renderer:
    """The report's "codec": it only encodes, drawing the metrics as HTML or SVG."""

    media_type: str
    problem_media_type: str = "application/problem+json"

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        raise NotImplementedError  # pragma: no cover - requests are decoded by their codec

    def encode(self, content: Mapping[str, Any]) -> bytes:
        return render(dict(content), self.media_type)


REPORT = _ReportEndpoint(CrossEntropyOptions, CROSS_ENTROPY.array_fields, merge_body)


@router.post(
    "/report",
    operation_id="report",
    summary="A visual report: reliability diagram, histograms, per-class accuracy",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/CrossEntropyRequest"},
                            {"$ref": "#/components/schemas/MergeRequest"},
                        ]
                    }
                }
                for media in ("application/json", "application/msgpack")
            },
        }
    },
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
    return await _respond(request, REPORT, _Renderer(media_type))


async def _respond(request: Request, endpoint: Endpoint, codec: Codec | None = None) -> Response:
    parts, media_type = await serve(request.scope, request.receive, endpoint, codec)
    return Response(b"".join(parts), media_type=media_type)
