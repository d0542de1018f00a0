"""Serving one scoring request from its ASGI scope: headers, body, codecs, limits, work.

Shared by the plain ASGI scoring routes and the FastAPI routes (merge, report).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any, TypeVar

from starlette.types import Receive, Scope

from app.api.body import OnData, read_body
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
    max_body_bytes = application.state.settings.max_body_bytes
    on_data = None if reader is None else reader.feed
    content = await read_and_run(receive, declared, encoding, max_body_bytes, work, limits, on_data)
    return content, response_codec.media_type


async def read_and_run(
    receive: Receive,
    declared: str | None,
    content_encoding: str | None,
    max_body_bytes: int,
    work: Callable[[bytes], T],
    limits: Limits,
    on_data: OnData | None = None,
) -> T:
    """Read the body and run ``work`` on it, both under the request's one deadline.

    Raises:
        DeadlineExceeded: the deadline passed (504); ``work`` checks it between stages.
    """

    async def read_then_run() -> T:
        body = await read_body(receive, declared, max_body_bytes, on_data)
        return await run_sized(work, body, content_encoding, limits)

    try:
        return await within(limits.timeout, read_then_run())
    except TimeoutError as exc:
        raise DeadlineExceeded(limits.timeout) from exc
