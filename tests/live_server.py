"""The service in a subprocess as the image runs it (``python -m app.serve``), for live tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def log_lines(self) -> list[str]:
        return self.stdout.read_text(encoding="utf-8").splitlines()

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            return False
        return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200


@contextmanager
def live_server(
    tmp: Path, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[LiveServer]:
    """Start ``python -m app.serve`` with ``env`` added; wait until /readyz answers 200."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    stdout, stderr = tmp / f"stdout-{port}.log", tmp / f"stderr-{port}.log"
    command = [sys.executable, "-m", "app.serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=err
        )
    server = LiveServer(f"http://127.0.0.1:{port}", proc, stdout, stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {stderr.read_text()[-2000:]}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
