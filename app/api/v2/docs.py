"""OpenAPI fragments of the raw-body inference routes (bodies read and written by hand)."""

from __future__ import annotations

from typing import Any

from app.api.openapi import example_of, schema_ref
from app.api.v2.schemas import InferenceError, InferenceRequest, InferenceResponse

__all__ = ["INFER", "NOT_FOUND", "NOT_READY"]

Responses = dict[int | str, dict[str, Any]]

_ERROR: dict[str, Any] = {"content": {"application/json": {"schema": schema_ref(InferenceError)}}}
_BINARY = {"type": "string", "format": "binary"}
_INFER_ERRORS = {
    400: "Malformed request: not JSON, bad header length or binary sizes",
    404: "No such model or version",
    413: "Body larger than the configured limit",
    422: "Invalid inputs, parameters or outputs",
}

NOT_FOUND: Responses = {404: {"description": "No such model or version", **_ERROR}}
NOT_READY: Responses = {503: {"description": "Starting or draining", **_ERROR}}
# The binary form is described in words and by its header, not as a second request media
# type: openapi-python-client generates broken code for a required body with two media
# types (openapi-generators/openapi-python-client#1451).
INFER: dict[str, Any] = {
    "parameters": [
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "Triton's binary tensor extension: the body is this many bytes of "
            "JSON InferenceRequest, then the raw little-endian bytes of each input whose "
            "parameters carry binary_data_size, in order (any Content-Type, e.g. "
            "application/octet-stream).",
        }
    ],
    "requestBody": {
        "required": True,
        "description": "An InferenceRequest; with Inference-Header-Content-Length, followed "
        "by the binary input data.",
        "content": {
            "application/json": {
                "schema": schema_ref(InferenceRequest),
                "example": example_of(InferenceRequest),
            },
        },
    },
    "responses": {
        "200": {
            "description": "Outputs; binary outputs follow a JSON header of "
            "Inference-Header-Content-Length bytes (application/octet-stream)",
            "content": {
                "application/json": {"schema": schema_ref(InferenceResponse)},
                "application/octet-stream": {"schema": _BINARY},
            },
        },
        **{str(code): {"description": text, **_ERROR} for code, text in _INFER_ERRORS.items()},
    },
}
