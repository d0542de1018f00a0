"""The one table that maps errors to HTTP status, and the problem-details body."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.body import BodyTimeout, BodyTooLarge
from app.api.inflate import DecompressedTooLarge, UnsupportedEncoding
from app.api.limits import DeadlineExceeded, Overloaded, TooManyElements
from app.codecs import (
    JSON,
    Codec,
    CodecError,
    InvalidArray,
    MalformedBody,
    NotAcceptable,
    UnsupportedMediaType,
)
from app.core import ScoringError
from app.observability.stats import STATS_KEY

__all__ = [
    "ERROR_CODEC",
    "OptionsInvalid",
    "handler_for",
    "install_error_handlers",
    "problem_response",
    "response_headers",
]

log = logging.getLogger("app.errors")

Loc = Sequence[str | int]

# Where a route records the codec negotiated so far, in the scope's state, so that an
# error answers in it (``request.state`` reads the same dict).
ERROR_CODEC = "error_codec"


class OptionsInvalid(Exception):
    """Request options rejected by their pydantic model, or a missing or extra field."""

    def __init__(self, errors: list[tuple[Loc, str, str]]) -> None:
        super().__init__("; ".join(message for _, message, _ in errors))
        self.errors = errors

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> OptionsInvalid:
        return cls([(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors()])


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
    (OptionsInvalid, HTTPStatus.UNPROCESSABLE_ENTITY),
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
    if isinstance(exc, OptionsInvalid):
        return [{"loc": list(loc), "message": msg, "type": kind} for loc, msg, kind in exc.errors]
    if isinstance(exc, RequestValidationError):
        return [
            {"loc": list(e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
    if isinstance(exc, ScoringError | CodecError):
        return [{"loc": list(exc.loc), "message": exc.message, "type": _snake(type(exc).__name__)}]
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
    stats = request.scope.get(STATS_KEY)
    if stats is not None and items:  # the reason in metrics and the access log
        stats.error = items[0]["type"]
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
