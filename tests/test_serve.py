"""``python -m app.serve``: each worker listens on a socket of its own in the port's group."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from uvicorn.config import STARTUP_FAILURE

from app.serve import WorkerListener, reuse_port_balances
from tests.live_server import ROOT, free_port, live_server

_JSON = {"Content-Type": "application/json"}
pytestmark = pytest.mark.skipif(
    not reuse_port_balances(), reason="SO_REUSEPORT spreads connections on Linux only"
)


def test_each_unpickled_listener_is_a_socket_of_its_own_on_the_port() -> None:
    port = free_port()
    listener = pickle.dumps(WorkerListener("127.0.0.1", port))
    first, second = pickle.loads(listener), pickle.loads(listener)
    with first, second:
        assert isinstance(first, socket.socket)
        assert first.fileno() != second.fileno()
        for sock in (first, second):
            assert sock.getsockname() == ("127.0.0.1", port)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            sock.listen()  # both in the port's group, both listening


def _sockets(port: int, state: str) -> set[str]:
    """The inodes of the TCP sockets on local ``port`` in ``state`` (/proc/net/tcp's code)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            found.add(f"socket:[{fields[9]}]")
    return found


def _served_by(port: int) -> Counter[int]:
    """How many established connections to ``port`` each process holds (from /proc)."""
    inodes = _sockets(port, "01")  # ESTABLISHED
    owners: Counter[int] = Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            owners[int(pid)] += sum(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds)
        except OSError:  # a process that ended, or not ours to read
            continue
    return +owners


def test_connections_opened_at_once_are_spread_over_the_workers(tmp_path: Path) -> None:
    # With one shared socket, 16 connections opened together went to one worker in 2
    # tries of 5 (and 13 or 15 of 16 in two more). A hash over two sockets puts all 16
    # on one with probability 2 / 2**16.
    body = json.dumps({"logits": [[1.0, 2.0, 3.0]], "labels": [2]})
    with live_server(tmp_path, workers=2) as server:
        port = int(server.url.rsplit(":", 1)[1])
        # /readyz answered from one worker. A worker listens once its app has started;
        # until the second does, the port's group has one socket and takes everything.
        deadline = time.monotonic() + 60
        while len(_sockets(port, "0A")) < 2 and time.monotonic() < deadline:  # 0A: LISTEN
            time.sleep(0.1)
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(16)]
        try:
            for connection in connections:  # all connected before any request
                connection.connect()
            for connection in connections:
                connection.request("POST", "/v1/cross-entropy", body, _JSON)
                response = connection.getresponse()
                assert response.status == 200
                assert abs(json.loads(response.read())["loss"] - 0.40760596) < 1e-7
            owners = _served_by(port)
        finally:
            for connection in connections:
                connection.close()
    assert sum(owners.values()) == 16  # the server's ends; the clients' have other ports
    assert len(owners) == 2, owners


def _held_port() -> socket.socket:
    """A socket listening on a free port without SO_REUSEPORT, as another program's."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_worker_that_cannot_bind_exits_as_failed_to_start() -> None:
    # Exit code STARTUP_FAILURE makes uvicorn's supervisor stop instead of restarting it.
    with _held_port() as held:
        listener = pickle.dumps(WorkerListener("127.0.0.1", held.getsockname()[1]))
        with pytest.raises(SystemExit) as exited:
            pickle.loads(listener)
    assert exited.value.code == STARTUP_FAILURE


def test_a_port_in_use_stops_the_server_at_once() -> None:
    with _held_port() as held:
        port = str(held.getsockname()[1])
        command = [sys.executable, "-m", "app.serve", "--port", port, "--workers", "2"]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot bind 127.0.0.1:{port}" in done.stderr


def test_the_graceful_shutdown_follows_the_setting_where_users_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    from app.serve import _options
    from app.settings import Settings

    monkeypatch.setenv("SCORER_GRACEFUL_SHUTDOWN_SECONDS", "7")
    assert _options(["--port", "8000"], Settings()).timeout_graceful_shutdown == 7
    # The image and scripts/serve.sh leave it to the setting: no flag pins it.
    root = Path(__file__).resolve().parents[1]
    for path in (root / "Dockerfile", root / "scripts" / "serve.sh"):
        assert "--timeout-graceful-shutdown" not in path.read_text(encoding="utf-8"), path
