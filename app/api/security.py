"""Optional bearer API keys, checked in constant time by a pure ASGI middleware."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import problem_response

__all__ = ["ApiKeys", "BearerAuth", "Refusal", "reject"]

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


@dataclass(frozen=True)
class Refusal:
    """Why a request's credentials are refused: its status, type, message and challenge."""

    status: HTTPStatus
    kind: str
    message: str
    challenge: str


_MISSING = Refusal(
    HTTPStatus.UNAUTHORIZED,
    "unauthorized",
    "an API key is required: send Authorization: Bearer <key>",
    _CHALLENGE,
)
_WRONG = Refusal(HTTPStatus.FORBIDDEN, "forbidden", "the API key is not valid", _INVALID)


class ApiKeys:
    """The bearer keys a request may carry, for REST (a header) and gRPC (metadata).

    Every configured key is compared (``hmac.compare_digest``) so the time taken says
    nothing about which key, or how much of one, matched. Keys are never logged.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = tuple(key.encode() for key in keys)

    def refusal(self, credentials: bytes) -> Refusal | None:
        """None when ``credentials`` (``Bearer <key>``) carry a valid key; else why not."""
        scheme, _, token = credentials.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return _MISSING
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(token, key)
        return None if matched else _WRONG


class BearerAuth:
    """401 without ``Authorization: Bearer <key>``, 403 with a key not in the list."""

    def __init__(self, app: ASGIApp, *, keys: Iterable[str], open_paths: Iterable[str]) -> None:
        self.app = app
        self.keys = ApiKeys(keys)
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
        refusal = self.keys.refusal(credentials)
        if refusal is not None:
            headers = {"WWW-Authenticate": refusal.challenge}
            await reject(
                scope, receive, send, refusal.status, refusal.kind, refusal.message, headers
            )
            return
        await self.app(scope, receive, send)
