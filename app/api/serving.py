"""Serving one scoring request from its ASGI scope: headers, body, codecs, limits, work.

Shared by the plain ASGI scoring routes and the FastAPI routes (merge, report).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any, TypeVar

from starlette.types import Message, Receive, Scope

from app.api.backpressure import SMALL, Capacity, Reservation, connection_of
from app.api.body import BodyTimeout, OnData, read_body
from app.api.deadlines import within
from app.api.endpoints import Endpoint
from app.api.errors import ERROR_CODEC
from app.api.inflate import is_identity
from app.api.limits import DeadlineExceeded, Limits, run_sized, run_staged
from app.codecs import (
    Buffer,
    Codec,
    Decoder,
    codec_for_accept,
    codec_for_content_type,
    reader_for,
)
from app.observability.stats import STATS_KEY, RequestStats

__all__ = ["read_and_run", "request_headers", "serve"]

T = TypeVar("T")
_READ = frozenset({b"content-type", b"accept", b"content-encoding", b"content-length"})


def request_headers(scope: Scope) -> dict[bytes, str]:
    """The headers serving needs, first occurrence of each (as Starlette's ``get``)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _READ and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def serve(
    scope: Scope, receive: Receive, endpoint: Endpoint, response_codec: Codec | None = None
) -> tuple[list[Buffer], str]:
    """Read, decode, score and encode one request; the body (in pieces) and its media type.

    A route that answers in its own format (the report) passes its encoder as
    ``response_codec``; its errors stay in the request's codec. Errors propagate to the
    application's handlers, which answer in the codec recorded in the scope's state.
    """
    headers = request_headers(scope)
    state: dict[str, Any] = scope.setdefault("state", {})
    request_codec = codec_for_content_type(headers.get(b"content-type"))
    state[ERROR_CODEC] = request_codec
    if response_codec is None:
        response_codec = codec_for_accept(headers.get(b"accept"), request_codec)
        state[ERROR_CODEC] = response_codec
    application = scope["app"]
    limits: Limits = application.state.limits
    stats: RequestStats = scope.get(STATS_KEY) or RequestStats()
    encoding = headers.get(b"content-encoding")
    declared = headers.get(b"content-length")
    reader = None
    if declared is not None and declared.isascii() and declared.isdigit() and is_identity(encoding):
        # A large JSON body is parsed a block of rows at a time while it arrives.
        reader = reader_for(request_codec, endpoint.array_fields, int(declared))
    codecs: tuple[Decoder, Codec] = (reader or request_codec, response_codec)
    work = partial(
        run_staged,
        endpoint,
        codecs=codecs,
        content_encoding=encoding,
        limits=limits,
        stats=stats,
        deadline=perf_counter() + limits.timeout,
    )
    on_data = None if reader is None else reader.feed
    content = await read_and_run(scope, receive, declared, encoding, work, limits, on_data)
    return content, response_codec.media_type


async def read_and_run(
    scope: Scope,
    receive: Receive,
    declared: str | None,
    content_encoding: str | None,
    work: Callable[[bytes], T],
    limits: Limits,
    on_data: OnData | None = None,
) -> T:
    """Read the body, then run ``work`` on it in a work slot, both under the one deadline.

    Reading holds the body's bytes against the worker's budget, not a slot; the server's
    body timeout ends a stalled read with 408.

    Raises:
        DeadlineExceeded: the deadline passed (504); ``work`` checks it between stages.
        Overloaded: the budget or the slots are full (503).
        BodyTimeout: the body stalled (408).
    """
    application = scope["app"]
    settings = application.state.settings
    capacity: Capacity = application.state.capacity
    connection = connection_of(scope)
    size = (
        int(declared)
        if declared is not None and declared.isascii() and declared.isdigit()
        else None
    )
    reservation = None
    if size is None or SMALL < size <= settings.max_body_bytes:  # larger: 413 unread
        reservation = Reservation(capacity, connection)
        # Refused before a byte is read when it cannot fit; the buffer takes this much.
        reservation.grow(size or 0)
    if connection is not None or size is None:
        inner, received = receive, 0

        async def held_receive() -> Message:
            nonlocal received
            message = await inner()
            if connection is not None and connection.body_timed_out:
                raise BodyTimeout(settings.body_timeout_seconds, settings.min_body_rate)
            if size is None and reservation is not None:
                received += len(message.get("body", b""))
                reservation.grow(received)
            return message

        receive = held_receive

    async def read_then_run() -> T:
        try:
            body = await read_body(receive, declared, settings.max_body_bytes, on_data)
        finally:
            if reservation is not None:
                reservation.release()
        with capacity:
            return await run_sized(work, body, content_encoding, limits)

    try:
        return await within(limits.timeout, read_then_run())
    except TimeoutError as exc:
        raise DeadlineExceeded(limits.timeout) from exc
