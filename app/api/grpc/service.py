"""``inference.GRPCInferenceService``: the Open Inference Protocol's calls over gRPC.

Each call does what its /v2 REST route does, with the same application state: the
same models, limits, work slots, deadline, metrics, access log, bearer keys and error
table. An error's HTTP status becomes its gRPC code (:data:`CODES`) and its message is
the one /v2 REST answers in ``{"error"}``. ModelInfer takes the request's bytes as they
came and parses them in the pipeline, so a large one is parsed in a worker thread, off
the event loop, as a large REST body is decoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from time import perf_counter
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc import aio

import app as package
from app.api.backpressure import SMALL, Capacity, Reservation
from app.api.deadlines import within
from app.api.errors import DeadlineExceeded, Draining, inference_failure
from app.api.grpc.messages import read_request, write_response
from app.api.grpc.protos import grpc_predict_v2_pb2 as pb
from app.api.pipeline import Answer, Limits, run_steps
from app.api.security import ApiKeys
from app.api.v2.infer import INFERENCES, Arrays, Inference
from app.api.v2.models import VERSION, find_model
from app.api.v2.tensors import InferRequest, OutputTensor
from app.codecs import MalformedBody
from app.observability import Recorder, RequestStats
from app.observability.logging import AccessLog
from app.observability.middleware import CLIENT_CLOSED, access_fields, request_id
from app.observability.prometheus import IN_FLIGHT
from app.settings import Settings

__all__ = ["CODES", "SERVICE", "InferenceService"]

SERVICE = "inference.GRPCInferenceService"

# The gRPC code of each status of the error table (and of a refused key).
CODES: dict[HTTPStatus, grpc.StatusCode] = {
    HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    HTTPStatus.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    HTTPStatus.REQUEST_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.UNPROCESSABLE_ENTITY: grpc.StatusCode.INVALID_ARGUMENT,
    HTTPStatus.INTERNAL_SERVER_ERROR: grpc.StatusCode.INTERNAL,
    HTTPStatus.SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    HTTPStatus.GATEWAY_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}
# The REST paths whose twins these calls are, for ``open_paths`` (served without a key).
_OPEN_PATHS = {"ServerLive": "/v2/health/live", "ServerReady": "/v2/health/ready"}

# The longest error message sent: grpc-message is a header, which clients refuse past
# 16 KiB (percent-encoded, a non-ASCII byte takes three).
_MESSAGE_BYTES = 4096

Decoded = tuple[Inference, InferRequest, Arrays]
Result = tuple[dict[str, Any], list[OutputTensor]]
Context = aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class _InferSteps:
    """ModelInfer through the pipeline: the message, the model's outputs, the response."""

    def decode(self, body: bytes, limits: Limits, stats: RequestStats) -> Decoded:
        parsed = read_request(body)
        inference = INFERENCES[find_model(parsed.model_name, parsed.model_version or None).name]
        arrays = inference.arrays(parsed.request, parsed.blobs, limits, stats)
        return inference, parsed.request, arrays

    def compute(self, decoded: Decoded, limits: Limits) -> Result:
        inference, request, arrays = decoded
        return inference.compute((request, arrays), limits)

    def encode(self, result: Result) -> Answer:
        return Answer([write_response(*result)], "application/grpc")


_STEPS = _InferSteps()


class InferenceService:
    """The calls of one worker's gRPC server, over its application's state."""

    def __init__(self, settings: Settings, limits: Limits, capacity: Capacity) -> None:
        self.limits = limits
        self.capacity = capacity
        keys = [key.get_secret_value() for key in settings.api_keys]
        self.keys = ApiKeys(keys) if keys else None
        self.open = {method for method, path in _OPEN_PATHS.items() if path in settings.open_paths}
        self.recorder = Recorder() if settings.metrics else None
        self.access_log = AccessLog() if settings.access_log else None

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's methods, for ``aio.Server.add_generic_rpc_handlers``."""

        def unary(
            method: str, kind: Any, call: Callable[[Any], Awaitable[Any]], quiet: bool = False
        ) -> grpc.RpcMethodHandler[Any, Any]:
            # The bytes as they came: a message that does not parse is INVALID_ARGUMENT
            # here, counted and logged, not grpc's UNKNOWN before the call runs.
            async def serve(body: bytes, context: Context) -> bytes:
                async def work(stats: RequestStats) -> bytes:
                    try:
                        request = kind.FromString(body)
                    except DecodeError as exc:
                        message = f"the request is not a {kind.__name__}: {exc}"
                        raise MalformedBody(message) from exc
                    response = await call(request)
                    return bytes(response.SerializeToString())

                return await self._serve(method, context, work, len(body), quiet)

            return grpc.unary_unary_rpc_method_handler(serve)

        async def model_infer(body: bytes, context: Context) -> bytes:
            async def work(stats: RequestStats) -> bytes:
                return await self._infer(body, context, stats)

            return await self._serve("ModelInfer", context, work, len(body))

        methods = {
            "ServerLive": unary("ServerLive", pb.ServerLiveRequest, self._live, quiet=True),
            "ServerReady": unary("ServerReady", pb.ServerReadyRequest, self._ready, quiet=True),
            "ModelReady": unary("ModelReady", pb.ModelReadyRequest, self._model_ready),
            "ServerMetadata": unary(
                "ServerMetadata", pb.ServerMetadataRequest, self._server_metadata
            ),
            "ModelMetadata": unary("ModelMetadata", pb.ModelMetadataRequest, self._metadata),
            "ModelConfig": unary("ModelConfig", pb.ModelConfigRequest, self._config),
            "ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer),
        }
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def _serve(
        self,
        method: str,
        context: Context,
        work: Callable[[RequestStats], Awaitable[bytes]],
        received: int,
        quiet: bool = False,
    ) -> bytes:
        """Run one call: its key, its work, its error as a gRPC status, its metrics and log."""
        metadata: dict[str, str | bytes] = {}
        for key, value in context.invocation_metadata() or ():
            metadata.setdefault(key, value)  # the first of a repeated key, as REST takes
        stats = RequestStats(request_id(_as_bytes(metadata.get("x-request-id"))))
        context.set_trailing_metadata((("x-request-id", stats.request_id),))
        start = perf_counter()
        status: int = HTTPStatus.OK
        sent = 0
        refusal = None
        if self.keys is not None and method not in self.open:
            refusal = self.keys.refusal(_as_bytes(metadata.get("authorization")))
        if not quiet:
            IN_FLIGHT.enter()
        try:
            if refusal is not None:
                status, stats.error = refusal.status, refusal.kind
                await context.abort(CODES[status], refusal.message)
            response = await work(stats)
            sent = len(response)
            return response
        except asyncio.CancelledError:
            # The client cancelled, its deadline passed, or the server is stopping:
            # nobody gets an answer, as for a REST client gone before its answer (499).
            status, stats.error = CLIENT_CLOSED, "client_disconnected"
            raise
        except aio.AbortError:
            raise  # the refusal above
        except Exception as exc:
            failure, message = inference_failure(exc, stats)
            status = failure
            await context.abort(CODES.get(failure, grpc.StatusCode.UNKNOWN), _fit(message))
        finally:
            if not quiet:
                IN_FLIGHT.leave()
                self._record(method, status, perf_counter() - start, received, sent, stats)
        raise AssertionError("context.abort returned")  # it raises: never reached

    def _record(
        self,
        method: str,
        status: int,
        seconds: float,
        received: int,
        sent: int,
        stats: RequestStats,
    ) -> None:
        route = f"/{SERVICE}/{method}"
        if self.recorder is not None:
            self.recorder.record(route, status, "protobuf", seconds, received, sent, stats)
        if self.access_log is not None:
            fields = access_fields(
                "gRPC", route, status, "protobuf", seconds, received, sent, stats
            )
            self.access_log.write(fields)

    async def _infer(self, body: bytes, context: Context, stats: RequestStats) -> bytes:
        capacity, limits = self.capacity, self.limits
        if capacity.readiness.draining:
            raise Draining("this server is shutting down; send the request to another replica")
        remaining = context.time_remaining()
        seconds = limits.timeout if remaining is None else min(limits.timeout, remaining)
        deadline = perf_counter() + seconds
        try:
            answer = await within(
                seconds,
                run_steps(_STEPS, body, None, limits, capacity, stats, deadline, seconds),
            )
        except TimeoutError as exc:
            raise DeadlineExceeded(seconds) from exc
        response = bytes(answer.parts[0])
        if len(response) > SMALL:
            # Held until the call ends: counted against the budget while it is sent.
            reservation = Reservation(capacity, None)
            reservation.grow(len(response), refuse=False)
            # (The stubs type the callback as a class; grpc calls any callable.)
            context.add_done_callback(lambda _: reservation.release())  # type: ignore[arg-type]
        return response

    async def _live(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _ready(self, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.capacity.not_ready() is None)

    async def _model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        find_model(request.name, request.version or None)
        return pb.ModelReadyResponse(ready=self.capacity.not_ready() is None)

    async def _server_metadata(
        self, request: pb.ServerMetadataRequest
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name="scorer",
            version=package.__version__,
            extensions=["model_configuration"],
        )

    async def _metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        model = find_model(request.name, request.version or None)
        return pb.ModelMetadataResponse(
            name=model.name,
            versions=[VERSION],
            platform="scorer",
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**s.metadata()) for s in model.inputs],
            outputs=[
                pb.ModelMetadataResponse.TensorMetadata(**s.metadata()) for s in model.outputs
            ],
        )

    async def _config(self, request: pb.ModelConfigRequest) -> pb.ModelConfigResponse:
        model = find_model(request.name, request.version or None)
        config = pb.ModelConfig(name=model.name, platform="scorer", backend="numpy")
        for spec in model.inputs:
            described = spec.config()
            config.input.add(
                name=spec.name,
                data_type=pb.DataType.Value(described["data_type"]),
                dims=spec.shape,
                optional=spec.optional,
            )
        for spec in model.outputs:
            described = spec.config()
            config.output.add(
                name=spec.name, data_type=pb.DataType.Value(described["data_type"]), dims=spec.shape
            )
        return pb.ModelConfigResponse(config=config)


def _as_bytes(value: str | bytes | None) -> bytes:
    """A metadata value as the bytes a REST header would carry (binary ``-bin`` ones too)."""
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode("utf-8", "replace")


def _fit(message: str) -> str:
    """The message, cut to what a gRPC status can carry (a name in it may be huge)."""
    encoded = message.encode()
    if len(encoded) <= _MESSAGE_BYTES:
        return message
    return encoded[: _MESSAGE_BYTES - 3].decode("utf-8", "ignore") + "..."
