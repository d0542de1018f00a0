"""Optional bearer API keys, checked in constant time by a pure ASGI middleware."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from http import HTTPStatus

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import problem_response

__all__ = ["BearerAuth", "reject"]

_CHALLENGE = 'Bearer realm="scorer"'
_INVALID = 'Bearer realm="scorer", error="invalid_token"'


async def reject(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: HTTPStatus,
    kind: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer with a problem-details body before the request reaches a route."""
    request = Request(scope, receive)
    item = {"loc": [], "message": message, "type": kind}
    response = problem_response(request, status, [item])
    if headers:
        response.headers.update(headers)
    await response(scope, receive, send)


class BearerAuth:
    """401 without ``Authorization: Bearer <key>``, 403 with a key not in the list.

    Every configured key is compared (``hmac.compare_digest``) so the time taken says
    nothing about which key, or how much of one, matched. Keys are never logged.
    """

    def __init__(self, app: ASGIApp, *, keys: Iterable[str], open_paths: Iterable[str]) -> None:
        self.app = app
        self.keys = tuple(key.encode() for key in keys)
        self.open = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open:
            await self.app(scope, receive, send)
            return
        credentials = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                credentials = value
                break
        scheme, _, token = credentials.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            await reject(
                scope,
                receive,
                send,
                HTTPStatus.UNAUTHORIZED,
                "unauthorized",
                "an API key is required: send Authorization: Bearer <key>",
                {"WWW-Authenticate": _CHALLENGE},
            )
            return
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(token, key)
        if not matched:
            await reject(
                scope,
                receive,
                send,
                HTTPStatus.FORBIDDEN,
                "forbidden",
                "the API key is not valid",
                {"WWW-Authenticate": _INVALID},
            )
            return
        await self.app(scope, receive, send)
