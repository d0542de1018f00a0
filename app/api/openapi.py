"""The OpenAPI document: both media types for every body, schemas from the pydantic models.

``python -m app.api`` writes ``openapi/openapi.json``; a test fails when the
committed file drifts from the code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api.schemas import Problem

__all__ = [
    "BODY_MEDIA_TYPES",
    "build_openapi",
    "error_responses",
    "example_of",
    "one_of_body",
    "post_operation",
    "request_body",
    "response_body",
    "schema_ref",
]

BODY_MEDIA_TYPES = ("application/json", "application/msgpack")
PROBLEM_MEDIA_TYPES = ("application/problem+json", "application/msgpack")
SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

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


BEARER = "bearer"
_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key of SCORER_API_KEYS, as `Authorization: Bearer <key>`; "
    "required when the service has keys, except on SCORER_OPEN_PATHS (probes, /metrics).",
}


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema among the document's components."""
    # models_json_schema names a model's schema after its class (build_openapi).
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def example_of(model: type[BaseModel]) -> Any:
    """The first of ``model``'s ``examples`` (its ``json_schema_extra``), a request body."""
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    if not isinstance(examples, list) or not examples:
        raise ValueError(f"{model.__name__} has no example: give it json_schema_extra examples")
    return examples[0]


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON and msgpack request body of ``model``, with its
    example (msgpack carries the same structure)."""
    content = {
        media: {"schema": schema_ref(model), "example": example_of(model)}
        for media in BODY_MEDIA_TYPES
    }
    return {"requestBody": {"required": True, "content": content}}


def one_of_body(*models: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a request body that is one of ``models``; each one's
    example under its name."""
    schema = {"oneOf": [schema_ref(model) for model in models]}
    examples = {model.__name__: {"value": example_of(model)} for model in models}
    content = {media: {"schema": schema, "examples": examples} for media in BODY_MEDIA_TYPES}
    return {"requestBody": {"required": True, "content": content}}


def response_body(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """``responses`` declaring the 200 body in both media types and every error."""
    ok = {media: {"schema": schema_ref(model)} for media in BODY_MEDIA_TYPES}
    return {200: {"description": "Scored", "content": ok}, **error_responses()}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """Problem-details responses for the client errors a scoring route can answer."""
    content = {media: {"schema": schema_ref(Problem)} for media in PROBLEM_MEDIA_TYPES}
    return {code: {"description": text, "content": content} for code, text in _ERRORS.items()}


def post_operation(
    operation_id: str,
    summary: str,
    description: str,
    tags: list[str],
    request_model: type[BaseModel],
    response_model: type[BaseModel],
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
    app: FastAPI, extra_paths: Mapping[str, dict[str, Any]], models: Iterable[type[BaseModel]]
) -> dict[str, Any]:
    """The document FastAPI generates, plus what it cannot see of the raw-body routes.

    ``extra_paths`` are the path items of routes FastAPI does not generate (plain ASGI);
    ``models`` the models that raw-body operations refer to, whose schemas are added.
    """
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema(
            [(model, "validation") for model in _unique([*models, Problem])],
            ref_template="#/components/schemas/{model}",
        )
        spec.setdefault("paths", {}).update(extra_paths)
        components = spec.setdefault("components", {})
        components.setdefault("schemas", {}).update(defs["$defs"])
        components["securitySchemes"] = {BEARER: _BEARER_SCHEME}
        # Optional: the service asks for a key only when SCORER_API_KEYS is set.
        spec["security"] = [{BEARER: []}, {}]
        app.openapi_schema = spec
    return app.openapi_schema


def _unique(models: list[type[BaseModel]]) -> list[type[BaseModel]]:
    return list(dict.fromkeys(models))


def render(app: FastAPI) -> str:
    """The document as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
