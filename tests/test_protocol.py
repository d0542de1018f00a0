"""Slow, stalled and hostile clients against a live ``python -m app.serve`` (app/protocol.py).

Each attack runs while a well-behaved client keeps scoring on connections of its own:
every one of its answers must be a correct 200, quickly, and the worker's memory must
stay within the budget. Timeouts are 1 s here (10 s by default) to keep the suite short.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from tests.live_server import LiveServer, live_server

GOOD = {"logits": [[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]], "labels": [2, 0]}
GOOD_LOSS = 0.5230033176112721
BUDGET = 16 * 1024 * 1024
ENV = {
    "SCORER_HEADER_TIMEOUT_SECONDS": "1",
    "SCORER_BODY_TIMEOUT_SECONDS": "1",
    "SCORER_WRITE_TIMEOUT_SECONDS": "1",
    "SCORER_BUFFER_BUDGET_BYTES": str(BUDGET),
    # The allocator as scripts/serve.sh and the image set it: freed heap is kept, so that
    # RSS after a warm-up is the work's and the growth past it what waiting holds.
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=134217728",
}
# How long past a 1 s timeout the server may take to act: the check runs every 0.25 s,
# and this machine's two cores are shared.
SLACK = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("protocol"), ENV) as live:
        yield live
        assert live.alive()


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Bystander(threading.Thread):
    """A well-behaved client: keep-alive, one small request after another, all checked."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.url = server.url
        self.pid = server.proc.pid
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.peak_rss = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                self.peak_rss = max(self.peak_rss, _rss(self.pid))
                start = time.perf_counter()
                try:
                    response = client.post("/v1/cross-entropy", json=GOOD)
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                elif abs(response.json()["loss"] - GOOD_LOSS) > 1e-12:
                    self.failures.append(f"wrong loss {response.json()['loss']}")
                time.sleep(0.01)

    def __enter__(self) -> Bystander:
        self.baseline_rss = _rss(self.pid)
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=15)

    def check(self) -> None:
        """Every answer a correct 200, at a small request's usual latency."""
        assert not self.failures, self.failures[:5]
        assert len(self.latencies) >= 20
        p50 = statistics.median(self.latencies)
        worst = max(self.latencies)
        # Unloaded, a request takes 1-3 ms here; an attack must not make others wait.
        assert p50 < 0.05, f"p50 {p50:.4f} s"
        assert worst < 1.0, f"max {worst:.3f} s"


def _connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:  # set before connecting, so the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes (b"" read) or resets the connection."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    start = time.monotonic()
    data = _read_all(sock, seconds)  # socket.timeout (an OSError) if never closed
    assert time.monotonic() - start <= seconds
    return data


def _response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _access_log(server: LiveServer) -> list[dict[str, Any]]:
    lines = []
    for line in server.log_lines():
        record = json.loads(line)
        if record.get("logger") == "app.access":
            lines.append(record)
    return lines


def _closed_count(server: LiveServer, reason: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    for line in text.splitlines():
        if line.startswith(f'scorer_connections_closed_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_idle_connections_and_slow_heads_are_closed(server: LiveServer) -> None:
    port = _port(server)
    with Bystander(server) as bystander:
        idle = [_connect(port) for _ in range(64)]
        slow = [_connect(port) for _ in range(64)]
        for sock in slow:
            sock.sendall(b"POST /v1/cross-entropy HTTP/1.1\r\nhost: x\r\n")
        try:
            start = time.monotonic()
            for _ in range(5):  # a header byte every 0.2 s: alive, never done
                time.sleep(0.2)
                for sock in slow:
                    with contextlib.suppress(OSError):  # closed already: fine
                        sock.sendall(b"x")
            for sock in idle + slow:
                assert _closed_within(sock, 1 + SLACK - (time.monotonic() - start)) == b""
        finally:
            for sock in idle + slow:
                sock.close()
    bystander.check()
    assert _closed_count(server, "idle") >= 64
    assert _closed_count(server, "header_timeout") >= 64


def test_a_header_too_large_is_431_and_a_flood_costs_bounded_memory(server: LiveServer) -> None:
    port = _port(server)
    with _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nx-big: " + b"a" * 100_000)
        status, headers, body = _response(_closed_within(sock, SLACK))
    assert status == 431
    assert headers["connection"] == "close"
    assert "65536 bytes" in json.loads(body)["detail"]
    with Bystander(server) as bystander:
        # 32 connections each sending an unterminated header of up to 8 MiB.
        floods = [_connect(port) for _ in range(32)]
        piece = b"x-flood: " + b"a" * (1 << 20)
        for sock in floods:
            try:
                for _ in range(8):
                    sock.sendall(piece)
            except OSError:  # refused and closed, as it should be
                pass
            finally:
                sock.close()
        time.sleep(0.5)
    bystander.check()
    # 256 MiB of headers sent; what the worker grew by is what one chunk costs.
    assert bystander.peak_rss - bystander.baseline_rss < 32 * 1024 * 1024


def test_slow_bodies_hold_no_slot_and_get_408(server: LiveServer) -> None:
    port = _port(server)
    head = (
        b"POST /v1/cross-entropy HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 100000\r\n\r\n"
    )
    with Bystander(server) as bystander:
        slow = [_connect(port) for _ in range(64)]
        for sock in slow:
            sock.sendall(head + b'{"logits": [[1')
        start = time.monotonic()
        answers = []
        try:
            while time.monotonic() - start < 1.0:  # a byte every 0.2 s: far below the rate
                time.sleep(0.2)
                for sock in slow:
                    sock.sendall(b" ")
            for sock in slow:
                answers.append(_closed_within(sock, 1 + SLACK))
        finally:
            for sock in slow:
                sock.close()
    bystander.check()
    for answer in answers:
        status, headers, body = _response(answer)
        assert status == 408
        assert headers["connection"] == "close"
        problem = json.loads(body)
        assert problem["errors"][0]["type"] == "body_timeout"
        assert "stalled" in problem["detail"]


def _softmax_request(rows: int) -> bytes:
    logits = np.random.default_rng(0).normal(size=(rows, 1000)).astype(np.float32)
    tensor = {"dtype": "float32", "shape": list(logits.shape), "data": logits.tobytes()}
    body = msgspec.msgpack.encode({"logits": tensor, "outputs": ["probs"]})
    head = (
        "POST /v1/softmax HTTP/1.1\r\nhost: x\r\ncontent-type: application/msgpack\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _exchange(port: int, request: bytes) -> None:
    """Send a raw request and read its whole answer (Content-Length framed)."""
    with _connect(port) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(_response(head + b"\r\n\r\n")[1]["content-length"])
        while len(body) < length:
            body += sock.recv(1 << 20)


def _exchanges(port: int, request: bytes, count: int) -> None:
    for _ in range(count):
        _exchange(port, request)


def test_stalled_readers_are_cut_off_within_the_budget(server: LiveServer) -> None:
    # 32 clients post a [512, 1000] float32 softmax (2 MB each way) and never read: 64 MB
    # of answers against a 16 MiB budget. They hold no slot; the budget sheds them, and
    # the write timeout closes them.
    port = _port(server)
    request = _softmax_request(512)
    # The same requests from clients that read: what the work itself costs (arenas,
    # buffers), so that the baseline below leaves only what waiting costs.
    warm_up = [threading.Thread(target=_exchanges, args=(port, request, 10)) for _ in range(3)]
    for thread in warm_up:
        thread.start()
    for thread in warm_up:
        thread.join(timeout=30)
    stalled_before = _closed_count(server, "write_stalled") + _closed_count(server, "shed")
    with Bystander(server) as bystander:
        readers = [_connect(port, rcvbuf=4096) for _ in range(32)]
        try:
            for sock in readers:
                sock.sendall(request)
            time.sleep(1 + SLACK)
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.get("/readyz").status_code == 200  # all cut off by now
        finally:
            for sock in readers:
                sock.close()
    bystander.check()
    # What the stalled answers held, beyond what serving them to readers took: the
    # budget, and the work of the requests computed at once (held all, it is 128 MB).
    assert bystander.peak_rss - bystander.baseline_rss < BUDGET + 64 * 1024 * 1024
    stalled = _closed_count(server, "write_stalled") + _closed_count(server, "shed")
    records = [r for r in _access_log(server) if r["route"] == "/v1/softmax"]
    statuses = [r["status"] for r in records]
    # Each stalled client was cut off (499), or refused while the budget was full (503);
    # only the readers of the warm-up got a 200.
    assert statuses.count(200) == 30
    assert statuses.count(499) + statuses.count(503) == 32
    assert statuses.count(499) == stalled - stalled_before >= 8
    for record in records:
        if record["status"] == 499:  # what the client got, never the whole answer
            assert record["error"] in ("write_stalled", "shed")
            assert record["response_bytes"] < 2_048_000


def test_readiness_says_when_the_budget_is_full(tmp_path: Path) -> None:
    env = {**ENV, "SCORER_WRITE_TIMEOUT_SECONDS": "30", "SCORER_BUFFER_BUDGET_BYTES": "4000000"}
    with live_server(tmp_path, env) as live:
        readers = [_connect(_port(live), rcvbuf=4096) for _ in range(2)]
        try:
            for sock in readers:
                sock.sendall(_softmax_request(512))
            time.sleep(0.5)
            ready = httpx.get(f"{live.url}/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "memory budget full"
            # A small request is served regardless; it costs less than the bookkeeping.
            assert httpx.post(f"{live.url}/v1/cross-entropy", json=GOOD).status_code == 200
            assert httpx.get(f"{live.url}/readyz").status_code == 503
            time.sleep(1.0)  # stalled a second: a large request cuts them off and is served
            large = {"logits": [[0.5] * 100] * 200, "labels": [0] * 200}  # 120 kB of JSON
            assert httpx.post(f"{live.url}/v1/cross-entropy", json=large).status_code == 200
            assert httpx.get(f"{live.url}/readyz").status_code == 200
            assert _closed_count(live, "shed") >= 1
        finally:
            for sock in readers:
                sock.close()


def test_a_half_closed_client_gets_its_answer_and_the_log_says_so(server: LiveServer) -> None:
    rows = 512
    logits = np.random.default_rng(1).normal(size=(rows, 1000)).astype(np.float32)
    labels = np.arange(rows) % 1000
    body = msgspec.msgpack.encode(
        {
            "logits": {"dtype": "float32", "shape": [rows, 1000], "data": logits.tobytes()},
            "labels": labels.tolist(),
        }
    )
    head = (
        "POST /v1/cross-entropy HTTP/1.1\r\nhost: x\r\ncontent-type: application/msgpack\r\n"
        f"x-request-id: half-close-test\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    with _connect(_port(server)) as sock:
        sock.sendall(head.encode() + body)
        sock.shutdown(socket.SHUT_WR)
        status, headers, content = _response(_closed_within(sock, 10))
    assert status == 200
    # "Connection: close" when the server saw the half-close before it answered; when the
    # answer was already on its way (the FIN can trail a large body), the server closes
    # after it, which _closed_within checked. Either order is a correct exchange.
    assert headers.get("connection", "close") == "close"
    assert len(content) == int(headers["content-length"])
    answer = msgspec.msgpack.decode(content)
    shifted = logits.astype(np.float64)
    m = shifted.max(axis=1)
    expected = np.mean(
        np.log(np.exp(shifted - m[:, None]).sum(axis=1)) + m - shifted[np.arange(rows), labels]
    )
    assert abs(answer["loss"] - expected) < 1e-5 * abs(expected)
    time.sleep(0.2)
    (record,) = [r for r in _access_log(server) if r["request_id"] == "half-close-test"]
    assert record["status"] == 200
    assert record["response_bytes"] == len(content)


def _keep_alive_load(port: int, stop: threading.Event, outcomes: list[str]) -> None:
    """A keep-alive client that goes on until the server refuses it a connection.

    A request the server accepted must be answered. A fresh connection reset before any
    answer was never accepted: it was still in the kernel's accept queue when the
    listening socket closed (the server closes no connection it accepted without
    reading it), so it counts as refused, as a refused connect does.
    """
    body = json.dumps(GOOD).encode()
    headers = {"content-type": "application/json"}
    connection: http.client.HTTPConnection | None = None
    fresh = True
    while not stop.is_set():
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.connect()
            except ConnectionError:  # refused, or reset in the accept queue: never sent
                outcomes.append("refused")
                return
            fresh = True
        try:
            connection.request("POST", "/v1/cross-entropy", body, headers)
            response = connection.getresponse()
            content = response.read()
        except (ConnectionError, http.client.HTTPException) as exc:
            outcomes.append("reset before accept" if fresh else f"lost: {exc!r}")
            connection.close()
            connection = None
            continue
        fresh = False
        closing = response.getheader("connection") == "close"
        if response.status == 200 and abs(json.loads(content)["loss"] - GOOD_LOSS) < 1e-12:
            outcomes.append("ok, close" if closing else "ok")
        else:
            outcomes.append(f"failed: {response.status}")
        if closing:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


@pytest.mark.parametrize("run", [pytest.param(i, id=f"run{i}") for i in range(3)])
def test_a_drain_under_keep_alive_load_loses_nothing(tmp_path: Path, run: int) -> None:
    with live_server(tmp_path, ENV) as live:
        stop = threading.Event()
        outcomes: list[str] = []
        clients = [
            threading.Thread(target=_keep_alive_load, args=(_port(live), stop, outcomes))
            for _ in range(8)
        ]
        for client in clients:
            client.start()
        try:
            time.sleep(0.5)
            live.proc.send_signal(signal.SIGTERM)
            # uvicorn re-raises the SIGTERM it handled once it has shut down.
            assert live.proc.wait(timeout=15) in (0, -signal.SIGTERM)
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=15)
    failed = [o for o in outcomes if not o.startswith(("ok", "refused", "reset before accept"))]
    assert not failed, failed[:5]
    assert outcomes.count("ok") > 50
    assert "ok, close" in outcomes  # the answers sent while draining said so
