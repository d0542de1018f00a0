"""Retries with backoff on connection errors and 503, timeouts, and the import footprint."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import msgspec
import numpy as np
import pytest
from scorer_client import (
    AsyncScoringClient,
    Backoff,
    ScoringAPIError,
    ScoringClient,
    ScoringConnectionError,
    ScoringTimeout,
)
from scorer_client._retry import parse

from tests.live_server import free_port

FAST = Backoff(retries=3, base=0.001, cap=0.01)
OK = {
    "loss": 0.5,
    "reduction": "mean",
    "loss_sum": 1.0,
    "total_weight": 2.0,
    "label_kind": "index",
    "precision": "float64",
    "diagnostics": None,
}
LOGITS, LABELS = np.zeros((2, 3)), np.array([0, 1])


def _flaky(failures: list[object]) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """Fails with each of ``failures`` in turn (an exception, or a status), then answers OK."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) <= len(failures):
            failure = failures[len(seen) - 1]
            if isinstance(failure, Exception):
                raise failure
            problem = {"title": "Service Unavailable", "status": failure, "detail": "busy"}
            return httpx.Response(
                int(failure),  # type: ignore[call-overload]
                json=problem,
                headers={"retry-after": "0", "content-type": "application/problem+json"},
            )
        return httpx.Response(
            200, content=msgspec.msgpack.encode(OK), headers={"content-type": "application/msgpack"}
        )

    return httpx.MockTransport(handler), seen


def test_retries_connection_errors_and_503() -> None:
    failures: list[object] = [httpx.ConnectError("refused"), 503, httpx.RemoteProtocolError("eof")]
    transport, seen = _flaky(failures)
    with ScoringClient("http://scorer", backoff=FAST, transport=transport) as client:
        assert client.cross_entropy(LOGITS, LABELS).loss == 0.5
    assert len(seen) == 4
    assert seen[0].headers["content-type"] == "application/msgpack"
    body = msgspec.msgpack.decode(seen[0].content)
    assert body["logits"]["dtype"] == "float64"
    assert bytes(body["logits"]["data"]) == LOGITS.tobytes()


def test_gives_up_after_the_retries() -> None:
    transport, seen = _flaky([httpx.ConnectError("refused")] * 10)
    with (
        ScoringClient("http://scorer", backoff=FAST, transport=transport) as client,
        pytest.raises(ScoringConnectionError, match="after 4 attempts"),
    ):
        client.cross_entropy(LOGITS, LABELS)
    assert len(seen) == 4


def test_503_after_the_retries_is_an_api_error() -> None:
    transport, seen = _flaky([503] * 10)
    with (
        ScoringClient("http://scorer", backoff=FAST, transport=transport) as client,
        pytest.raises(ScoringAPIError) as caught,
    ):
        client.softmax(LOGITS)
    assert caught.value.status == 503
    assert caught.value.detail == "busy"
    assert len(seen) == 4


def test_other_errors_are_not_retried() -> None:
    transport, seen = _flaky([422] * 10)
    with (
        ScoringClient("http://scorer", backoff=FAST, transport=transport) as client,
        pytest.raises(ScoringAPIError),
    ):
        client.softmax(LOGITS)
    assert len(seen) == 1


def test_backoff_grows_and_honours_retry_after() -> None:
    backoff = Backoff(retries=5, base=0.1, cap=1.0)
    assert [backoff.delay(n) for n in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff.delay(0, "0.5") == 0.1  # not a number of seconds: ignored
    assert backoff.delay(0, "3") == 1.0  # capped


def test_async_retries() -> None:
    transport, seen = _flaky([httpx.ConnectError("refused"), 503])

    def handler(request: httpx.Request) -> httpx.Response:
        return transport.handle_request(request)

    async def run() -> float | None:
        async with AsyncScoringClient(
            "http://scorer", backoff=FAST, transport=httpx.MockTransport(handler)
        ) as client:
            return (await client.cross_entropy(LOGITS, LABELS)).loss

    assert asyncio.run(run()) == 0.5
    assert len(seen) == 3


def test_connection_refused_for_real() -> None:
    with (
        ScoringClient(f"http://127.0.0.1:{free_port()}", backoff=FAST) as client,
        pytest.raises(ScoringConnectionError, match="ConnectError"),
    ):
        client.cross_entropy(LOGITS, LABELS)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_timeout(silent_port: int) -> None:
    with (
        ScoringClient(f"http://127.0.0.1:{silent_port}", timeout=0.2, backoff=FAST) as client,
        pytest.raises(ScoringTimeout),
    ):
        client.cross_entropy(LOGITS, LABELS)


def test_undecodable_error_body() -> None:
    response = httpx.Response(
        502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(ScoringAPIError) as caught:
        parse(response)
    assert caught.value.status == 502
    assert caught.value.errors == []
    assert "bad gateway" in caught.value.detail


BLOCKER = """
import sys
SERVER = {"fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in SERVER:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import scorer_client, scorer_client.cli
loaded = [m for m in sys.modules if m.startswith(("app.api", "app.core"))]
assert not loaded, loaded
print("ok")
"""


def test_importable_without_the_server_stack() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
