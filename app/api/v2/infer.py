"""One inference request through the pipeline: the protocol's tensors in and out.

The steps decode the JSON header and each input (JSON data or Triton's binary data),
run the model, and encode the outputs; the pipeline reads the body under the same
limits and deadline as /v1. Every error, the pipeline's too, answers ``{"error"}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.api.errors import InvalidFields, NestingTooDeep, inference_error
from app.api.pipeline import Answer, Limits, check_shape, count_samples, handle, read_head
from app.api.v2.models import MODELS, VERSION, Model
from app.api.v2.tensors import (
    HEADER_LENGTH,
    ONE_PASS_BYTES,
    Flat,
    InferRequest,
    OutputTensor,
    decode_input,
    encode_response,
    parse_once,
    parse_request,
)
from app.observability.stats import RequestStats

__all__ = ["INFERENCES", "Arrays", "InferApp", "Inference", "infer"]

Arrays = dict[str, np.ndarray[Any, Any]]


async def infer(scope: Scope, receive: Receive, model: Model) -> Response:
    """Score the body with ``model``; answer JSON, or binary outputs after a JSON header."""
    head = read_head(scope)
    steps = _InferSteps(INFERENCES[model.name], head.inference_header_length)
    try:
        answer = await handle(scope, receive, head, steps)
    except ClientDisconnect:
        raise  # nobody to answer: the middleware counts it as a 499, as for /v1
    except Exception as exc:  # every error, the deadline's too, is {"error": ...} here
        return inference_error(exc, scope)
    return Response(
        b"".join(answer.parts), media_type=answer.media_type, headers=dict(answer.headers)
    )


@dataclass(frozen=True)
class InferApp:
    """The plain ASGI app that scores one model's inference requests (the scoring lane's)."""

    model: Model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await infer(scope, receive, self.model)
        await response(scope, receive, send)


@dataclass(frozen=True)
class Inference:
    """An inference request past its transport: the inputs as arrays, the model's outputs.

    REST (JSON, Triton's binary extension) and gRPC (protobuf) each read their request
    into an :class:`InferRequest` and each input's bytes or numbers; from there both
    are this, so the same inputs give the same outputs and the same errors.
    """

    model: Model

    def arrays(
        self,
        request: InferRequest,
        blobs: Sequence[bytes | Flat],
        limits: Limits,
        stats: RequestStats,
    ) -> Arrays:
        """Each input as an array of its datatype and shape, under the limits.

        ``blobs``: each input's binary data (b"" when it is JSON ``data``), or its
        values already read as numbers.
        """
        model = self.model
        arrays: Arrays = {}
        for tensor, blob in zip(request.inputs, blobs, strict=True):
            if tensor.name not in model.endpoint.array_fields or tensor.name in arrays:
                why = "given twice" if tensor.name in arrays else "unknown input"
                known = ", ".join(spec.name for spec in model.inputs)
                message = f"{why} {tensor.name!r}; {model.name} takes {known}"
                raise InvalidFields([(("inputs", tensor.name), message, "extra_forbidden")])
            check_shape(tensor.name, tensor.shape, limits)  # declared, before any data
            if isinstance(blob, np.ndarray):  # already read as numbers
                arrays[tensor.name] = decode_input(tensor, b"", blob)
            else:  # the body's bytes (a bytearray when it came in several parts)
                arrays[tensor.name] = decode_input(tensor, blob)
        shapes = {name: array.shape for name, array in arrays.items()}
        count_samples(stats, shapes, request.parameters.get("axis", -1))
        return arrays

    def compute(
        self, decoded: tuple[InferRequest, Arrays], limits: Limits
    ) -> tuple[dict[str, Any], list[OutputTensor]]:
        """The response header (model, version, id, parameters used) and the outputs."""
        request, arrays = decoded
        model = self.model
        requested = None if request.outputs is None else [out.name for out in request.outputs]
        produced, used = model.compute(
            arrays, request.parameters, requested, limits.compute_threads
        )
        binary = {out.name: out.parameters.get("binary_data") for out in request.outputs or ()}
        default = request.parameters.get("binary_data_output", False)
        for flag in (default, *binary.values()):
            if not isinstance(flag, bool | None):
                raise InvalidFields(
                    [(("parameters",), "binary_data must be a boolean", "bool_type")]
                )
        outputs = [
            OutputTensor(name, array, bool(default if binary.get(name) is None else binary[name]))
            for name, array in produced.items()
        ]
        header: dict[str, Any] = {"model_name": model.name, "model_version": VERSION}
        if request.id is not None:
            header["id"] = request.id
        header["parameters"] = used
        return header, outputs


# The inference of each model, for REST and gRPC alike.
INFERENCES = {name: Inference(model) for name, model in MODELS.items()}


@dataclass(frozen=True)
class _InferSteps:
    inference: Inference
    header_length: str | None

    def decode(
        self, body: bytes, limits: Limits, stats: RequestStats
    ) -> tuple[InferRequest, Arrays]:
        once = None
        if self.header_length is None and len(body) >= ONE_PASS_BYTES:
            once = parse_once(body)
        blobs: list[bytes | Flat]
        if once is None:
            try:
                request, raw = parse_request(body, self.header_length)
            except RecursionError as exc:
                message = "the inference request is nested too deeply to decode"
                raise NestingTooDeep(message) from exc
            blobs = list(raw)
        else:
            request, values = once
            blobs = list(values)
        return request, self.inference.arrays(request, blobs, limits, stats)

    def compute(
        self, decoded: tuple[InferRequest, Arrays], limits: Limits
    ) -> tuple[dict[str, Any], list[OutputTensor]]:
        return self.inference.compute(decoded, limits)

    def encode(self, result: tuple[dict[str, Any], list[OutputTensor]]) -> Answer:
        content, length = encode_response(*result)
        if length is None:
            return Answer([content], "application/json")
        return Answer([content], "application/octet-stream", ((HEADER_LENGTH, str(length)),))
