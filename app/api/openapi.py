"""The OpenAPI document: both media types for every body, schemas from the pydantic models.

``python -m app.api`` writes ``openapi/openapi.json``; a test fails when the
committed file drifts from the code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api import metric_schemas, schemas
from app.api.v2 import schemas as v2_schemas

__all__ = [
    "BODY_MEDIA_TYPES",
    "build_openapi",
    "error_responses",
    "post_operation",
    "request_body",
    "response_body",
]

BODY_MEDIA_TYPES = ("application/json", "application/msgpack")
PROBLEM_MEDIA_TYPES = ("application/problem+json", "application/msgpack")
SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

_MODELS: tuple[type[BaseModel], ...] = (
    schemas.CrossEntropyRequest,
    schemas.BinaryCrossEntropyRequest,
    schemas.SoftmaxRequest,
    schemas.LossResponse,
    schemas.SoftmaxResponse,
    schemas.Problem,
    metric_schemas.MergeRequest,
    metric_schemas.DatasetMetrics,
    *v2_schemas.MODELS,
)
_ERRORS = {
    400: "Malformed body (not JSON / msgpack, or not an object)",
    401: "API keys are configured and the request has none (Authorization: Bearer)",
    403: "The API key is not valid",
    406: "No acceptable response media type",
    413: "Body, inflated body or an array larger than the configured limits",
    415: "Unsupported Content-Type or Content-Encoding",
    422: "Well-formed body with invalid content; errors name the field and index",
    503: "This worker serves its maximum of requests in flight; retry (Retry-After)",
    504: "The request did not complete within the configured deadline",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def request_body(model: str) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON and msgpack request body of ``model``."""
    content = {media: {"schema": _ref(model)} for media in BODY_MEDIA_TYPES}
    return {"requestBody": {"required": True, "content": content}}


def response_body(model: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` declaring the 200 body in both media types and every error."""
    ok = {media: {"schema": _ref(model)} for media in BODY_MEDIA_TYPES}
    return {200: {"description": "Scored", "content": ok}, **error_responses()}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """Problem-details responses for the client errors a scoring route can answer."""
    content = {media: {"schema": _ref("Problem")} for media in PROBLEM_MEDIA_TYPES}
    return {code: {"description": text, "content": content} for code, text in _ERRORS.items()}


def post_operation(
    operation_id: str,
    summary: str,
    description: str,
    tags: list[str],
    request_model: str,
    response_model: str,
) -> dict[str, Any]:
    """The operation object of a POST route FastAPI does not see (a plain ASGI route)."""
    responses = {str(code): item for code, item in response_body(response_model).items()}
    return {
        "description": description,
        "operationId": operation_id,
        "summary": summary,
        "tags": tags,
        **request_body(request_model),
        "responses": responses,
    }


def build_openapi(
    app: FastAPI, extra_paths: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The document FastAPI generates, plus the component schemas of the raw-body routes.

    ``extra_paths`` are the path items of routes FastAPI does not generate (plain ASGI).
    """
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema(
            [(model, "validation") for model in _MODELS],
            ref_template="#/components/schemas/{model}",
        )
        spec.setdefault("paths", {}).update(extra_paths or {})
        spec.setdefault("components", {}).setdefault("schemas", {}).update(defs["$defs"])
        app.openapi_schema = spec
    return app.openapi_schema


def render(app: FastAPI) -> str:
    """The document as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
