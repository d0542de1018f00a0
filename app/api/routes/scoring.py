"""The scoring routes as plain ASGI apps: no request object, no dependency solving.

A [64, 10] request costs about 200 us in decoding, scoring and encoding; FastAPI's route
machinery (dependency solving, the Request and Response objects, its exception wrappers)
added about 170 us more (bench/README.md). These routes skip it and keep everything else:
the middleware (metrics, log, auth, in-flight limit) and the error handlers, which answer
anything raised here through the one status table. FastAPI documents only its own
routes, so :data:`OPERATIONS` also feeds the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.endpoints import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, SOFTMAX, Endpoint
from app.api.errors import handler_for
from app.api.openapi import post_operation
from app.api.serving import serve

__all__ = ["OPERATIONS", "Operation", "ScoringLane", "openapi_paths", "routes"]


@dataclass(frozen=True)
class Operation:
    """One scoring route: where it is, what it runs, how the OpenAPI document shows it."""

    path: str
    endpoint: Endpoint
    operation_id: str
    summary: str
    description: str
    request_model: str
    response_model: str


OPERATIONS = (
    Operation(
        "/v1/cross-entropy",
        CROSS_ENTROPY,
        "crossEntropy",
        "Softmax cross-entropy",
        "Softmax cross-entropy of logits (or log-probabilities, or probabilities) and labels.",
        "CrossEntropyRequest",
        "LossResponse",
    ),
    Operation(
        "/v1/binary-cross-entropy",
        BINARY_CROSS_ENTROPY,
        "binaryCrossEntropy",
        "Sigmoid (binary, multi-label) cross-entropy",
        "Sigmoid cross-entropy of logits and targets in [0, 1], element by element.",
        "BinaryCrossEntropyRequest",
        "LossResponse",
    ),
    Operation(
        "/v1/softmax",
        SOFTMAX,
        "softmax",
        "Softmax, log-softmax and logsumexp",
        "Probabilities, log-probabilities and logsumexp of logits over the class axis.",
        "SoftmaxRequest",
        "SoftmaxResponse",
    ),
)


class ScoringRoute:
    """The ASGI app of one operation: 200 with the encoded result, or raise for a handler."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts, media_type = await serve(scope, receive, self.operation.endpoint)
        headers = [
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(sum(map(len, parts))).encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        last = len(parts) - 1
        for index, part in enumerate(parts):  # big tensors go out as views of their arrays
            await send({"type": "http.response.body", "body": part, "more_body": index < last})


class ScoringLane:
    """The innermost middleware: POSTs to a scoring path go straight to their route.

    Starlette's exception middleware and router cost about 20 us of a [64, 10] request
    in process (a Request per call, a send wrapper, a regex match per route tried, the
    child scope). Everything outside this layer still runs: metrics, access log, CORS,
    auth, in-flight limit, the server-error handler. Errors the status table knows are
    answered by the same handlers the exception middleware would call; anything else
    propagates to the server-error handler (500, logged) as before. Other methods and
    paths go on to the router, which answers 405 and 404.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes = {route.path: route for route in routes()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            path, root = scope["path"], scope.get("root_path")
            if root and path.startswith(root):  # as the router matches: below root_path
                path = path[len(root) :]
            route = self.routes.get(path)
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the router's record: the metrics and log label
        try:
            await route.app(scope, receive, send)
        except Exception as exc:
            handler = handler_for(exc)  # the route raises before it sends anything
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


def routes() -> list[Route]:
    """One POST route per operation (other methods get 405 from the router)."""
    return [
        Route(op.path, ScoringRoute(op), methods=["POST"], name=op.operation_id)
        for op in OPERATIONS
    ]


def openapi_paths() -> dict[str, dict[str, Any]]:
    """The path items of the scoring routes, as FastAPI would have generated them."""
    return {
        op.path: {
            "post": post_operation(
                op.operation_id,
                op.summary,
                op.description,
                ["scoring"],
                op.request_model,
                op.response_model,
            )
        }
        for op in OPERATIONS
    }
