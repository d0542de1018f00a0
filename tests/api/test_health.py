"""Liveness, readiness and the drain on SIGTERM (the last against a real uvicorn)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_live_and_ready(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_not_ready_before_startup() -> None:
    # Without the lifespan (no `with`), the app has not warmed up: not ready, but live.
    test_client = TestClient(create_app(Settings()))
    assert test_client.get("/healthz").status_code == 200
    response = test_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = {**os.environ, "SCORER_DRAIN_SECONDS": "1.5"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not become ready in 30 s")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


def test_sigterm_drains(server: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url = server
    with httpx.Client(base_url=url, timeout=5) as http:
        assert http.get("/readyz").status_code == 200
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # Still serving during the drain delay, but no longer ready.
        assert http.get("/readyz").status_code == 503
        scored = http.post("/v1/cross-entropy", json={"logits": [[1, 2, 3]], "labels": [2]})
        assert scored.status_code == 200
    # uvicorn re-raises the captured SIGTERM once it has shut down cleanly.
    assert proc.wait(timeout=15) in (0, -signal.SIGTERM)


def test_native_opentelemetry_is_off_unless_asked() -> None:
    from app.api import create_app
    from app.settings import Settings

    # FastAPI checks the global providers on every request unless all three are off.
    off = create_app(Settings(access_log=False))._telemetry
    assert (off["tracing"], off["metrics"], off["logs"]) == (False, False, False)
    on = create_app(Settings(access_log=False, opentelemetry=True))._telemetry
    assert (on["tracing"], on["metrics"], on["logs"]) == (True, True, True)
