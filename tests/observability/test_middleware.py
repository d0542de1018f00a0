"""The request size the middleware records: as declared, or counted for a chunked body."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from starlette.types import Receive, Scope, Send

from app.observability.middleware import ObservabilityMiddleware


class _Lines:
    def __init__(self) -> None:
        self.fields: list[dict[str, Any]] = []

    def write(self, fields: dict[str, Any]) -> None:
        self.fields.append(fields)


async def _read_all(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _served(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> dict[str, Any]:
    middleware = ObservabilityMiddleware(
        _read_all, quiet_paths=(), prometheus=False, access_log=True
    )
    lines = _Lines()
    middleware.access_log = lines  # type: ignore[assignment]
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    scope = {"type": "http", "method": "POST", "path": "/v1/softmax", "headers": headers}

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        pass

    anyio.run(middleware, scope, receive, send)
    (line,) = lines.fields
    return line


@pytest.mark.parametrize("chunks", [[b"x" * 10, b"y" * 20, b"z" * 5], [b""]])
def test_a_chunked_body_is_counted_as_it_arrives(chunks: list[bytes]) -> None:
    line = _served([], chunks)
    assert line["request_bytes"] == sum(map(len, chunks))
    assert (line["status"], line["response_bytes"]) == (200, 2)


def test_a_declared_length_is_the_size_even_when_less_arrived() -> None:
    line = _served([(b"content-length", b"100")], [b"x" * 35])
    assert line["request_bytes"] == 100
