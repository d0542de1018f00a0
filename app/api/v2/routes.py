"""Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor extension."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

import app as package
from app.api.body import read_body
from app.api.errors import OptionsInvalid, status_for
from app.api.v2 import schemas
from app.api.v2.models import MODELS, Model
from app.api.v2.tensors import (
    HEADER_LENGTH,
    OutputTensor,
    decode_input,
    encode_response,
    parse_request,
)
from app.codecs import CodecError
from app.core import ScoringError

__all__ = ["router"]

log = logging.getLogger("app.errors")
router = APIRouter(prefix="/v2", tags=["open inference protocol"])

_VERSION = "1"
_ERROR: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InferenceError"}}}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such model or version", **_ERROR}
}
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Starting or draining", **_ERROR}
}
_BINARY = {"type": "string", "format": "binary"}
_INFER_ERRORS = {
    400: "Malformed request: not JSON, bad header length or binary sizes",
    404: "No such model or version",
    413: "Body larger than the configured limit",
    422: "Invalid inputs, parameters or outputs",
}
_INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
            "application/octet-stream": {
                "schema": {
                    **_BINARY,
                    "description": "A JSON InferenceRequest of Inference-Header-Content-Length "
                    "bytes, then the bytes of each input with parameters.binary_data_size.",
                }
            },
        },
    },
    "responses": {
        "200": {
            "description": "Outputs; binary outputs follow a JSON header of "
            "Inference-Header-Content-Length bytes (application/octet-stream)",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InferenceResponse"}},
                "application/octet-stream": {"schema": _BINARY},
            },
        },
        **{str(code): {"description": text, **_ERROR} for code, text in _INFER_ERRORS.items()},
    },
}


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, HTTPException):
        status, message = HTTPStatus(exc.status_code), str(exc.detail)
    else:
        status, message = status_for(exc), _message(exc)
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        log.exception("unhandled error in an inference request")
        message = "internal error"
    return JSONResponse({"error": message}, status_code=int(status))


def _message(exc: Exception) -> str:
    if isinstance(exc, OptionsInvalid):
        return "; ".join(
            f"{'.'.join(map(str, loc))}: {text}" if loc else text for loc, text, _ in exc.errors
        )
    if isinstance(exc, ScoringError | CodecError):
        return exc.message
    return str(exc)


def _model(name: str, version: str | None = None) -> Model:
    model = MODELS.get(name)
    if model is None:
        raise HTTPException(404, f"unknown model {name!r}; the models are {', '.join(MODELS)}")
    if version is not None and version != _VERSION:
        raise HTTPException(404, f"model {name!r} has only version {_VERSION}, not {version!r}")
    return model


def _process(model: Model, body: bytes, header_length: str | None) -> tuple[bytes, int | None]:
    request, blobs = parse_request(body, header_length)
    arrays = {}
    for tensor, blob in zip(request.inputs, blobs, strict=True):
        if tensor.name not in model.endpoint.array_fields or tensor.name in arrays:
            why = "given twice" if tensor.name in arrays else "unknown input"
            known = ", ".join(spec.name for spec in model.inputs)
            message = f"{why} {tensor.name!r}; {model.name} takes {known}"
            raise OptionsInvalid([(("inputs", tensor.name), message, "extra_forbidden")])
        arrays[tensor.name] = decode_input(tensor, blob)
    requested = None if request.outputs is None else [out.name for out in request.outputs]
    produced, info = model.compute(arrays, request.parameters, requested)
    binary = {out.name: out.parameters.get("binary_data") for out in request.outputs or ()}
    default = request.parameters.get("binary_data_output", False)
    for flag in (default, *binary.values()):
        if not isinstance(flag, bool | None):
            raise OptionsInvalid([(("parameters",), "binary_data must be a boolean", "bool_type")])
    outputs = [
        OutputTensor(name, array, bool(default if binary.get(name) is None else binary[name]))
        for name, array in produced.items()
    ]
    header: dict[str, Any] = {"model_name": model.name, "model_version": _VERSION}
    if request.id is not None:
        header["id"] = request.id
    header["parameters"] = info
    return encode_response(header, outputs)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    try:
        model = _model(name, version)
        body = await read_body(request, request.app.state.settings.max_body_bytes)
        content, header_length = await run_in_threadpool(
            _process, model, body, request.headers.get(HEADER_LENGTH)
        )
    except Exception as exc:  # every error is {"error": ...} in this protocol
        return _error(exc)
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


def _ready(request: Request) -> bool:
    return bool(request.app.state.readiness.ready)


@router.get("", operation_id="serverMetadata", summary="Server metadata")
async def server_metadata() -> schemas.ServerMetadata:
    """The server's name, version and protocol extensions."""
    return schemas.ServerMetadata(
        name="scorer",
        version=package.__version__,
        extensions=["binary_tensor_data", "model_configuration"],
    )


@router.get("/health/live", operation_id="serverLive", summary="Server liveness")
async def server_live() -> schemas.ServerLive:
    """200 while the process serves requests."""
    return schemas.ServerLive(live=True)


@router.get(
    "/health/ready",
    operation_id="serverReady",
    response_model=schemas.ServerReady,
    summary="Server readiness",
    responses=_NOT_READY,
)
async def server_ready(request: Request) -> Response:
    """200 when this worker takes inference requests; 503 while starting or draining."""
    ready = _ready(request)
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get(
    "/models/{name}",
    operation_id="modelMetadata",
    response_model=schemas.ModelMetadata,
    summary="Model metadata",
    responses=_NOT_FOUND,
)
async def model_metadata(name: str) -> Response:
    """Inputs and outputs of a model: cross-entropy, binary-cross-entropy or softmax."""
    try:
        model = _model(name)
    except HTTPException as exc:
        return _error(exc)
    body = schemas.ModelMetadata(
        name=model.name,
        versions=[_VERSION],
        platform="scorer",
        inputs=[schemas.TensorMetadata(**spec.metadata()) for spec in model.inputs],
        outputs=[schemas.TensorMetadata(**spec.metadata()) for spec in model.outputs],
    )
    return JSONResponse(body.model_dump())


@router.get(
    "/models/{name}/ready",
    operation_id="modelReady",
    response_model=schemas.ModelReady,
    summary="Model readiness",
    responses={**_NOT_FOUND, **_NOT_READY},
)
async def model_ready(request: Request, name: str) -> Response:
    """200 when the model takes inference requests (always, once the server is ready)."""
    try:
        model = _model(name)
    except HTTPException as exc:
        return _error(exc)
    ready = _ready(request)
    return JSONResponse({"name": model.name, "ready": ready}, status_code=200 if ready else 503)


@router.get(
    "/models/{name}/config",
    operation_id="modelConfig",
    response_model=schemas.ModelConfig,
    summary="Model configuration (Triton)",
    responses=_NOT_FOUND,
)
async def model_config(name: str) -> Response:
    """Triton-style configuration: tensors as data_type and dims, no batching dimension."""
    try:
        model = _model(name)
    except HTTPException as exc:
        return _error(exc)
    body = schemas.ModelConfig(
        name=model.name,
        platform="scorer",
        backend="numpy",
        max_batch_size=0,
        input=[schemas.ConfigTensor(**spec.config()) for spec in model.inputs],
        output=[schemas.ConfigTensor(**spec.config()) for spec in model.outputs],
    )
    return JSONResponse(body.model_dump())


@router.post(
    "/models/{name}/infer",
    operation_id="modelInfer",
    summary="Inference: score a batch",
    response_class=Response,
    openapi_extra=_INFER_OPENAPI,
)
async def model_infer(request: Request, name: str) -> Response:
    """Score the inputs with the named model; JSON tensors or Triton's binary extension."""
    return await _infer(request, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    operation_id="modelVersionInfer",
    summary="Inference on a model version",
    response_class=Response,
    openapi_extra=_INFER_OPENAPI,
)
async def model_version_infer(request: Request, name: str, version: str) -> Response:
    """As modelInfer; every model has the single version 1."""
    return await _infer(request, name, version)
