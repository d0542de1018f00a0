"""Every error the web layer raises, the one table that maps errors to HTTP status, and
the two error bodies: RFC 9457 problem details on /v1, ``{"error"}`` on /v2.

This module imports nothing else from ``app.api``: any module of the layer may raise
its errors, and the table sees every error the codecs and the core raise too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from scorer_client.metrics.errors import InvalidAggregate
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from app.codecs import (
    JSON,
    Codec,
    CodecError,
    DecompressedTooLarge,
    InvalidArray,
    MalformedBody,
    NotAcceptable,
    UnsupportedEncoding,
    UnsupportedMediaType,
)
from app.core import ScoringError
from app.observability.stats import STATS_KEY, RequestStats

__all__ = [
    "ERROR_CODEC",
    "BodyTimeout",
    "BodyTooLarge",
    "DeadlineExceeded",
    "Draining",
    "InvalidFields",
    "NestingTooDeep",
    "Overloaded",
    "RankTooHigh",
    "TooManyElements",
    "handler_for",
    "inference_error",
    "inference_failure",
    "install_error_handlers",
    "problem_response",
    "response_headers",
]

log = logging.getLogger("app.errors")

Loc = Sequence[str | int]

# Where a route records the codec negotiated so far, in the scope's state, so that an
# error answers in it (``request.state`` reads the same dict).
ERROR_CODEC = "error_codec"


class InvalidFields(Exception):
    """Request fields rejected by their pydantic model, or a missing or extra field."""

    def __init__(self, errors: list[tuple[Loc, str, str]]) -> None:
        super().__init__("; ".join(message for _, message, _ in errors))
        self.errors = errors

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> InvalidFields:
        return cls([(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()])


class BodyTooLarge(Exception):
    """The body is larger than the configured limit."""

    def __init__(self, limit: int, size: int | None) -> None:
        seen = f"{size} bytes" if size is not None else "more"
        super().__init__(f"request body exceeds the limit of {limit} bytes (got {seen})")
        self.limit = limit
        self.size = size


class BodyTimeout(Exception):
    """The body stopped arriving, or arrived too slowly (the server's body timeout)."""

    def __init__(self, idle: float, rate: int) -> None:
        pace = f", or slower than {rate} bytes/s after that" if rate else ""
        super().__init__(f"the request body stalled: no byte for {idle:g} s{pace}")


class TooManyElements(CodecError):
    """An array with more elements than ``max_elements``."""


class RankTooHigh(InvalidArray):
    """An array with more dimensions than ``max_rank``."""


class NestingTooDeep(InvalidArray):
    """A body nested deeper than ``max_json_depth`` (or than the decoder can follow)."""


class Overloaded(Exception):
    """No work slot is free, or the memory budget for waiting clients is spent (503)."""


class Draining(Overloaded):
    """The worker is shutting down and takes no new gRPC inference (UNAVAILABLE)."""


class DeadlineExceeded(Exception):
    """The request took longer than ``request_timeout_seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request did not complete within {seconds:g} s")


# Status of every error the service raises on purpose; the first matching class wins.
STATUS_TABLE: tuple[tuple[type[Exception], HTTPStatus], ...] = (
    (MalformedBody, HTTPStatus.BAD_REQUEST),
    (BodyTimeout, HTTPStatus.REQUEST_TIMEOUT),
    (NotAcceptable, HTTPStatus.NOT_ACCEPTABLE),
    (BodyTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (DecompressedTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (TooManyElements, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (UnsupportedEncoding, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (InvalidArray, HTTPStatus.UNPROCESSABLE_ENTITY),
    (ScoringError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (InvalidAggregate, HTTPStatus.UNPROCESSABLE_ENTITY),
    (InvalidFields, HTTPStatus.UNPROCESSABLE_ENTITY),
    (RequestValidationError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (DeadlineExceeded, HTTPStatus.GATEWAY_TIMEOUT),
    (Overloaded, HTTPStatus.SERVICE_UNAVAILABLE),
)


def response_headers(status: HTTPStatus) -> dict[str, str] | None:
    """Headers an error status implies: when to retry, or that the connection ends."""
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        return {"Retry-After": "1"}
    if status == HTTPStatus.REQUEST_TIMEOUT:
        # The rest of the body is still on its way: the connection cannot carry another request.
        return {"Connection": "close"}
    return None


def status_for(exc: Exception) -> HTTPStatus:
    """The status of a known error; anything else is a server fault."""
    for kind, status in STATUS_TABLE:
        if isinstance(exc, kind):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _items(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, InvalidFields):
        return [{"loc": list(loc), "message": msg, "type": kind} for loc, msg, kind in exc.errors]
    if isinstance(exc, RequestValidationError):
        return [
            {"loc": list(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
    if isinstance(exc, ScoringError | CodecError | InvalidAggregate):
        kind = getattr(exc, "problem_type", None) or _snake(type(exc).__name__)
        return [{"loc": list(exc.loc), "message": exc.message, "type": kind}]
    return [{"loc": [], "message": str(exc), "type": _snake(type(exc).__name__)}]


def problem_response(
    request: Request, status: HTTPStatus, items: list[dict[str, Any]], detail: str | None = None
) -> Response:
    """An RFC 9457 body in the codec negotiated so far (JSON until one is known)."""
    codec: Codec = getattr(request.state, ERROR_CODEC, JSON)
    if detail is None:
        detail = items[0]["message"] if len(items) == 1 else f"{len(items)} errors"
        if len(items) > 1:
            detail += ": " + "; ".join(str(i["message"]) for i in items[:3])
    body = {
        "type": "about:blank",
        "title": status.phrase,
        "status": int(status),
        "detail": detail,
        "instance": request.url.path,
        "errors": items,
    }
    if items:
        _record_reason(request.scope, items[0]["type"])
    headers = response_headers(status)
    if _is_v2(request.url.path):
        # The Open Inference Protocol has its own error body, also for errors raised
        # before a /v2 route runs (unknown path, method, key, overload).
        return JSONResponse({"error": detail}, status_code=int(status), headers=headers)
    return Response(
        codec.encode(body),
        status_code=int(status),
        media_type=codec.problem_media_type,
        headers=headers,
    )


def _record_reason(scope: Scope, reason: str) -> None:
    # The error's type is the reason in the metrics and the access log.
    stats = scope.get(STATS_KEY)
    if stats is not None:
        stats.error = reason


def _is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


async def _known(request: Request, exc: Exception) -> Response:
    return problem_response(request, status_for(exc), _items(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = HTTPStatus(exc.status_code)
    item = {"loc": [], "message": str(exc.detail), "type": status.name.lower()}
    response = problem_response(request, status, [item])
    response.headers.update(exc.headers or {})
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Never a stack trace or an internal path in the body: the log has them.
    log.exception("unhandled error on %s", request.url.path)
    item = {"loc": [], "message": "internal error", "type": "internal_error"}
    response = problem_response(request, HTTPStatus.INTERNAL_SERVER_ERROR, [item])
    # Starlette raises the error again after this response, and uvicorn then closes the
    # connection: say so, or a keep-alive client sends its next request into a closed socket.
    response.headers["connection"] = "close"
    return response


Handler = Callable[[Request, Exception], Awaitable[Response]]
# The exception middleware's handlers, and the scoring lane's: everything else is a 500.
_HANDLERS: tuple[tuple[type[Exception], Handler], ...] = (
    *((kind, _known) for kind, _ in STATUS_TABLE),
    (HTTPException, _http),
)


def handler_for(exc: Exception) -> Handler | None:
    """The handler the exception middleware would call for ``exc``; None for a 500."""
    for kind, handler in _HANDLERS:
        if isinstance(exc, kind):
            return handler
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the table above."""
    for kind, handler in _HANDLERS:
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(Exception, _unexpected)


def inference_failure(exc: Exception, stats: RequestStats | None) -> tuple[HTTPStatus, str]:
    """The table's status of an Open Inference Protocol error, and its message.

    The reason goes to the request's ``stats`` (metrics and access log) as for /v1.
    REST answers it as ``{"error": message}``, gRPC with the status's gRPC code.
    """
    if isinstance(exc, HTTPException):
        status, message = HTTPStatus(exc.status_code), str(exc.detail)
        reason = status.name.lower()  # as _http names it for /v1
    else:
        status, message = status_for(exc), _message(exc)
        reason = _items(exc)[0]["type"]
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        # Never a stack trace or an internal path in the answer: the log has them.
        log.exception("unhandled error in an inference request")
        message, reason = "internal error", "internal_error"
    if stats is not None:
        stats.error = reason
    return status, message


def inference_error(exc: Exception, scope: Scope) -> JSONResponse:
    """The Open Inference Protocol's ``{"error": message}``, with the table's status."""
    status, message = inference_failure(exc, scope.get(STATS_KEY))
    return JSONResponse(
        {"error": message}, status_code=int(status), headers=response_headers(status)
    )


def _message(exc: Exception) -> str:
    if isinstance(exc, InvalidFields):
        return "; ".join(
            f"{'.'.join(map(str, loc))}: {text}" if loc else text for loc, text, _ in exc.errors
        )
    if isinstance(exc, ScoringError | CodecError | InvalidAggregate):
        return exc.message
    return str(exc)
