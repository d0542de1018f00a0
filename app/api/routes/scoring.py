"""The scoring routes: read the raw body, negotiate codecs, compute (large bodies in a thread)."""

from __future__ import annotations

from functools import partial
from time import perf_counter

import anyio
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.body import read_body
from app.api.endpoints import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, SOFTMAX, Endpoint
from app.api.limits import DeadlineExceeded, Limits, run_sized, run_staged
from app.api.openapi import request_body, response_body
from app.codecs import Codec, codec_for_accept, codec_for_content_type
from app.observability.stats import STATS_KEY, RequestStats

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["scoring"])


async def _serve(
    request: Request, endpoint: Endpoint, response_codec: Codec | None = None
) -> Response:
    # A route that answers in its own format (the report) passes its encoder; its
    # errors stay in the request's codec.
    request_codec = codec_for_content_type(request.headers.get("content-type"))
    request.state.error_codec = request_codec
    if response_codec is None:
        response_codec = codec_for_accept(request.headers.get("accept"), request_codec)
        request.state.error_codec = response_codec
    limits: Limits = request.app.state.limits
    stats: RequestStats = request.scope.get(STATS_KEY) or RequestStats()
    deadline = perf_counter() + limits.timeout
    work = partial(
        run_staged,
        endpoint,
        codecs=(request_codec, response_codec),
        content_encoding=request.headers.get("content-encoding"),
        limits=limits,
        stats=stats,
        deadline=deadline,
    )
    try:
        with anyio.fail_after(limits.timeout):
            body = await read_body(request, request.app.state.settings.max_body_bytes)
            content = await run_sized(work, body, request.headers.get("content-encoding"), limits)
    except TimeoutError as exc:
        raise DeadlineExceeded(limits.timeout) from exc
    return Response(content, media_type=response_codec.media_type)


@router.post(
    "/cross-entropy",
    operation_id="crossEntropy",
    summary="Softmax cross-entropy",
    response_class=Response,
    openapi_extra=request_body("CrossEntropyRequest"),
    responses=response_body("LossResponse"),
)
async def cross_entropy(request: Request) -> Response:
    """Softmax cross-entropy of logits (or log-probabilities, or probabilities) and labels."""
    return await _serve(request, CROSS_ENTROPY)


@router.post(
    "/binary-cross-entropy",
    operation_id="binaryCrossEntropy",
    summary="Sigmoid (binary, multi-label) cross-entropy",
    response_class=Response,
    openapi_extra=request_body("BinaryCrossEntropyRequest"),
    responses=response_body("LossResponse"),
)
async def binary_cross_entropy(request: Request) -> Response:
    """Sigmoid cross-entropy of logits and targets in [0, 1], element by element."""
    return await _serve(request, BINARY_CROSS_ENTROPY)


@router.post(
    "/softmax",
    operation_id="softmax",
    summary="Softmax, log-softmax and logsumexp",
    response_class=Response,
    openapi_extra=request_body("SoftmaxRequest"),
    responses=response_body("SoftmaxResponse"),
)
async def softmax(request: Request) -> Response:
    """Probabilities, log-probabilities and logsumexp of logits over the class axis."""
    return await _serve(request, SOFTMAX)
