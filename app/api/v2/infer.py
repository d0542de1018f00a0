"""One inference request, start to finish, under the same limits as /v1."""

from __future__ import annotations

import logging
import math
from functools import partial
from http import HTTPStatus
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import OptionsInvalid, response_headers, status_for
from app.api.inflate import inflate
from app.api.limits import (
    Limits,
    NestingTooDeep,
    RankTooHigh,
    TooManyElements,
)
from app.api.serving import read_and_run
from app.api.v2.models import VERSION, Model
from app.api.v2.tensors import (
    HEADER_LENGTH,
    OutputTensor,
    decode_input,
    encode_response,
    parse_request,
)
from app.codecs import CodecError
from app.core import ScoringError

__all__ = ["error_response", "infer"]

log = logging.getLogger("app.errors")


def error_response(exc: Exception) -> JSONResponse:
    """``{"error": message}`` with the status of the one error table."""
    if isinstance(exc, HTTPException):
        status, message = HTTPStatus(exc.status_code), str(exc.detail)
    else:
        status, message = status_for(exc), _message(exc)
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        # Never a stack trace or an internal path in the body: the log has them.
        log.exception("unhandled error in an inference request")
        message = "internal error"
    return JSONResponse(
        {"error": message}, status_code=int(status), headers=response_headers(status)
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, OptionsInvalid):
        return "; ".join(
            f"{'.'.join(map(str, loc))}: {text}" if loc else text for loc, text, _ in exc.errors
        )
    if isinstance(exc, ScoringError | CodecError):
        return exc.message
    return str(exc)


async def infer(request: Request, model: Model) -> Response:
    """Read the body, score it (large bodies in a worker thread), answer JSON or binary."""
    limits: Limits = request.app.state.limits
    work = partial(
        _process,
        model,
        header_length=request.headers.get(HEADER_LENGTH),
        content_encoding=request.headers.get("content-encoding"),
        limits=limits,
    )
    try:
        content, length = await read_and_run(
            request.scope,
            request.receive,
            request.headers.get("content-length"),
            request.headers.get("content-encoding"),
            work,
            limits,
        )
    except Exception as exc:  # every error, the deadline's too, is {"error": ...} here
        return error_response(exc)
    if length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(length)},
    )


def _process(
    model: Model,
    body: bytes,
    header_length: str | None,
    content_encoding: str | None,
    limits: Limits,
) -> tuple[bytes, int | None]:
    if content_encoding is not None:
        body = inflate(body, content_encoding, limits.max_decompressed_bytes)
    try:
        request, blobs = parse_request(body, header_length)
    except RecursionError as exc:
        raise NestingTooDeep("the inference request is nested too deeply to decode") from exc
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for tensor, blob in zip(request.inputs, blobs, strict=True):
        if tensor.name not in model.endpoint.array_fields or tensor.name in arrays:
            why = "given twice" if tensor.name in arrays else "unknown input"
            known = ", ".join(spec.name for spec in model.inputs)
            message = f"{why} {tensor.name!r}; {model.name} takes {known}"
            raise OptionsInvalid([(("inputs", tensor.name), message, "extra_forbidden")])
        _check_size(tensor.name, tensor.shape, limits)
        arrays[tensor.name] = decode_input(tensor, blob)
    requested = None if request.outputs is None else [out.name for out in request.outputs]
    produced, used = model.compute(arrays, request.parameters, requested)
    binary = {out.name: out.parameters.get("binary_data") for out in request.outputs or ()}
    default = request.parameters.get("binary_data_output", False)
    for flag in (default, *binary.values()):
        if not isinstance(flag, bool | None):
            raise OptionsInvalid([(("parameters",), "binary_data must be a boolean", "bool_type")])
    outputs = [
        OutputTensor(name, array, bool(default if binary.get(name) is None else binary[name]))
        for name, array in produced.items()
    ]
    header: dict[str, Any] = {"model_name": model.name, "model_version": VERSION}
    if request.id is not None:
        header["id"] = request.id
    header["parameters"] = used
    return encode_response(header, outputs)


def _check_size(name: str, shape: list[int], limits: Limits) -> None:
    # Checked on the declared shape, before any data is decoded.
    if len(shape) > limits.max_rank:
        message = f"{name}: {len(shape)} dimensions; at most {limits.max_rank} are allowed"
        raise RankTooHigh(message, (name,))
    size = math.prod(shape)  # exact: the dimensions are any JSON integers (10**400 too)
    if size > limits.max_elements:
        # A 4300-digit count is more than str() will write: give its power of two.
        count = str(size) if size < 10**18 else f"over 2**{size.bit_length() - 1}"
        message = f"{name}: {count} elements; at most {limits.max_elements} are allowed"
        raise TooManyElements(message, (name,))
