"""Serving one scoring request from its ASGI scope: headers, body, codecs, limits, work.

Shared by the plain ASGI scoring routes and the FastAPI routes (merge, report).
"""

from __future__ import annotations

import asyncio
from functools import partial
from time import perf_counter
from typing import Any

from starlette.types import Receive, Scope

from app.api.body import read_body
from app.api.endpoints import Endpoint
from app.api.limits import DeadlineExceeded, Limits, run_sized, run_staged
from app.codecs import Codec, codec_for_accept, codec_for_content_type
from app.observability.stats import STATS_KEY, RequestStats

__all__ = ["ERROR_CODEC", "request_headers", "serve"]

# Where the error handlers find the codec negotiated so far (``request.state`` reads it).
ERROR_CODEC = "error_codec"
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
) -> tuple[bytes, str]:
    """Read, decode, score and encode one request; the body and its media type.

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
    codecs: tuple[Codec, Codec] = (request_codec, response_codec)
    work = partial(
        run_staged,
        endpoint,
        codecs=codecs,
        content_encoding=encoding,
        limits=limits,
        stats=stats,
        deadline=perf_counter() + limits.timeout,
    )
    try:
        async with asyncio.timeout(limits.timeout):
            limit = application.state.settings.max_body_bytes
            body = await read_body(receive, headers.get(b"content-length"), limit)
            content = await run_sized(work, body, encoding, limits)
    except TimeoutError as exc:
        raise DeadlineExceeded(limits.timeout) from exc
    return content, str(response_codec.media_type)
