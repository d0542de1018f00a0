"""Pure ASGI middleware: request id, in-flight gauge, Prometheus metrics and one access-log line."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from time import perf_counter
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logging import AccessLog
from app.observability.prometheus import IN_FLIGHT, Recorder
from app.observability.stats import STATS_KEY, RequestStats

__all__ = ["CLIENT_CLOSED", "ObservabilityMiddleware", "access_fields", "request_id"]

_MAX_ID = 128
# nginx's status for a request the client abandoned; never sent, only counted and logged.
CLIENT_CLOSED = 499


def _encoding(content_type: bytes) -> str:
    media = content_type.split(b";", 1)[0].strip().lower()
    if media.endswith(b"json"):
        return "json"
    if media.endswith(b"msgpack"):
        return "msgpack"
    return "other"


class _Ids:
    """32 hex digits: 64 random bits per process, then a counter.

    Unique across processes and replicas like a uuid4, at a fraction of its cost: one
    ``getrandom`` per process instead of per request (bench/README.md, design decisions).
    A forked worker draws its own prefix.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def mint(self) -> str:
        return f"{self.prefix}{next(self.counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_IDS = _Ids()


def request_id(value: bytes) -> str:
    """The caller's request id when it is short printable ASCII; otherwise a new one."""
    if 0 < len(value) <= _MAX_ID and value.isascii():
        text = value.decode("ascii")
        if text.isprintable():
            return text
    return _IDS.mint()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _route_paths(app: Any) -> frozenset[str]:
    # The documented paths without parameters (FastAPI's own route list is nested and lazy).
    try:
        paths = app.openapi()["paths"]
    except Exception:  # not a FastAPI app: no labels but "other"
        return frozenset()
    return frozenset(path for path in paths if "{" not in path)


class ObservabilityMiddleware:
    """Counts, times and logs every request except the quiet paths (probes, /metrics)."""

    def __init__(
        self, app: ASGIApp, *, quiet_paths: Iterable[str], prometheus: bool, access_log: bool
    ) -> None:
        self.app = app
        self.quiet = frozenset(quiet_paths)
        self.recorder = Recorder() if prometheus else None
        self.access_log = AccessLog() if access_log else None
        self._encodings: dict[bytes, str] = {}
        self._paths: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.quiet:
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        given_id, encoding, declared = b"", "none", b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given_id = value
            elif name == b"content-type":
                encoding = self._encodings.get(value) or self._encoding(value)
            elif name == b"content-length":
                declared = value
        stats = RequestStats(request_id(given_id))
        scope[STATS_KEY] = stats
        id_header = (b"x-request-id", stats.request_id.encode("ascii"))
        status, received, sent = 500, 0, 0

        # A declared size is the size, read or not (the HTTP parser frames by it); only a
        # chunked body is counted as it arrives.
        inner_receive = receive
        if declared.isascii() and declared.isdigit():
            received = int(declared)
        else:

            async def counting_receive() -> Message:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                return message

            inner_receive = counting_receive

        async def tagging_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        IN_FLIGHT.enter()
        try:
            await self.app(scope, inner_receive, tagging_send)
        except ClientDisconnect:
            # The client went away before its body was read: nothing to answer and
            # nothing broken. Counted and logged as nginx does (499), not as a 500
            # with two tracebacks (ours and uvicorn's) in the log.
            status, stats.error = CLIENT_CLOSED, "client_disconnected"
        except BaseException:
            stats.error = stats.error or "internal_error"
            raise
        finally:
            IN_FLIGHT.leave()
            if stats.undelivered is not None:
                # The client did not get the answer (gone, or stopped reading): record what
                # reached it, as for a client that left before its body arrived.
                status, sent = CLIENT_CLOSED, max(0, sent - stats.undelivered)
            seconds = perf_counter() - start
            route = self._route(scope)
            if self.recorder is not None:
                self.recorder.record(route, status, encoding, seconds, received, sent, stats)
            if self.access_log is not None:
                self.access_log.write(
                    access_fields(
                        scope["method"], route, status, encoding, seconds, received, sent, stats
                    )
                )

    def _encoding(self, content_type: bytes) -> str:
        label = _encoding(content_type)
        if len(self._encodings) < 256:  # bounded: clients choose these bytes
            self._encodings[content_type] = label
        return label

    def _route(self, scope: Scope) -> str:
        # The router leaves the matched route in the scope: its path template is the label.
        route = scope.get("route")
        path: str | None = getattr(route, "path", None)
        if path is not None:
            return path
        if self._paths is None:
            self._paths = _route_paths(scope.get("app"))
        # Rejected before routing (401, 503): the path if it is a route, never a free string.
        return scope["path"] if scope["path"] in self._paths else "other"


def access_fields(
    method: str,
    route: str,
    status: int,
    encoding: str,
    seconds: float,
    received: int,
    sent: int,
    stats: RequestStats,
) -> dict[str, Any]:
    return {
        "request_id": stats.request_id,
        "method": method,
        "route": route,
        "status": status,
        "encoding": encoding,
        "request_bytes": received,
        "response_bytes": sent,
        "duration_ms": round(seconds * 1000, 3),
        "decode_ms": _ms(stats.decode),
        "compute_ms": _ms(stats.compute),
        "encode_ms": _ms(stats.encode),
        "samples": stats.samples,
        "classes": stats.classes,
        "error": stats.error,
    }
