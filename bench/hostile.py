"""Slow, stalled and hostile clients against ``python -m app.serve`` with its default limits.

``python -m bench.hostile --workers 1,2``: for each attack, 64 hostile connections per
worker while four keep-alive clients score [64, 10] JSON and check every answer; prints
their latency (p50, p99, max), failures, the workers' peak RSS, and what the attackers
got. Then ``--drains`` SIGTERMs under keep-alive load, counting requests lost. Runs on
this machine only (127.0.0.1); the figures are in bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GOOD = json.dumps(
    {
        "logits": np.round(np.linspace(-3, 3, 640), 3).reshape(64, 10).tolist(),
        "labels": list(range(10)) * 6 + [0, 1, 2, 3],
    }
).encode()
JSON = {"content-type": "application/json"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(workers: int, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    command = [sys.executable, "-m", "app.serve", "--port", str(port), "--workers", str(workers)]
    env = {**os.environ, "SCORER_ACCESS_LOG": "false"}
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200 and len(_pids(proc.pid)) >= workers:
                    break
            time.sleep(0.2)
        time.sleep(1.0)  # every worker listening
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _pids(pid: int) -> list[int]:
    """The processes that serve: the workers, or the server itself with one worker."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = [int(c) for c in children if "resource_tracker" not in _cmdline(int(c))]
    return workers or [pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class Bystanders:
    """Keep-alive clients that score and check one request after another."""

    def __init__(self, port: int, pids: list[int], clients: int = 4) -> None:
        self.port, self.pids = port, pids
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self.peak_rss = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        self.expected: float | None = None

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                connection.request("POST", "/v1/cross-entropy", GOOD, JSON)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures[type(exc).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            self.latencies.append(time.perf_counter() - start)
            if response.status != 200:
                self.failures[str(response.status)] += 1
                continue
            loss = json.loads(body)["loss"]
            if self.expected is None:
                self.expected = loss
            elif loss != self.expected:
                self.failures["wrong"] += 1
            time.sleep(0.005)
        connection.close()

    def __enter__(self) -> Bystanders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def sample(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.peak_rss = max(self.peak_rss, _rss(self.pids))
            time.sleep(0.1)

    def summary(self) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies)
        return {
            "requests": len(ms),
            "p50_ms": round(statistics.median(ms), 2) if ms else None,
            "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2) if ms else None,
            "max_ms": round(ms[-1], 1) if ms else None,
            "failures": dict(self.failures),
            "peak_rss_mb": round(self.peak_rss / 1e6, 1),
        }


def _connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def _status(sock: socket.socket) -> str:
    """What the attacker got: the status line's code, 'closed' or 'open'."""
    sock.settimeout(0.05)
    try:
        data = sock.recv(65536)
    except (TimeoutError, BlockingIOError):
        return "open"
    except OSError:
        return "reset"
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"


Attack = Callable[[int, int, Bystanders], list[socket.socket]]


def idle(port: int, count: int, bystanders: Bystanders) -> list[socket.socket]:
    socks = [_connect(port) for _ in range(count)]
    bystanders.sample(12)  # past the 10 s head timeout
    return socks


def slow_heads(port: int, count: int, bystanders: Bystanders) -> list[socket.socket]:
    socks = [_connect(port) for _ in range(count)]
    for sock in socks:
        sock.sendall(b"POST /v1/cross-entropy HTTP/1.1\r\nhost: x\r\n")
    return _trickle(socks, b"x", bystanders)


def _trickle(
    socks: list[socket.socket], byte: bytes, bystanders: Bystanders
) -> list[socket.socket]:
    """A byte a second on each socket for 12 s, past the 10 s limits, bystanders sampled."""
    for _ in range(12):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.sendall(byte)
        bystanders.sample(1)
    return socks


def header_flood(port: int, count: int, bystanders: Bystanders) -> list[socket.socket]:
    socks = [_connect(port) for _ in range(count)]
    piece = b"x-flood: " + b"a" * (1 << 20)
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            for _ in range(8):
                sock.sendall(piece)
    bystanders.sample(2)
    return socks


def slow_bodies(port: int, count: int, bystanders: Bystanders) -> list[socket.socket]:
    socks = [_connect(port) for _ in range(count)]
    head = b"POST /v1/cross-entropy HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    for sock in socks:
        sock.sendall(head + b"content-length: 2000000\r\n\r\n" + b'{"logits": [[1')
    return _trickle(socks, b" ", bystanders)


def stalled_readers(port: int, count: int, bystanders: Bystanders) -> list[socket.socket]:
    logits = np.random.default_rng(0).normal(size=(1024, 1000)).astype(np.float32)
    tensor = {"dtype": "float32", "shape": [1024, 1000], "data": logits.tobytes()}
    body = msgspec.msgpack.encode({"logits": tensor, "outputs": ["probs"]})
    request = (
        b"POST /v1/softmax HTTP/1.1\r\nhost: x\r\ncontent-type: application/msgpack\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    socks = [_connect(port, rcvbuf=4096) for _ in range(count)]
    for sock in socks:
        sock.sendall(request)
    bystanders.sample(13)  # past the 10 s write timeout
    return socks


ATTACKS: dict[str, Attack] = {
    "idle": idle,
    "slow-heads": slow_heads,
    "header-flood": header_flood,
    "slow-bodies": slow_bodies,
    "stalled-readers": stalled_readers,
}


def attack(workers: int, name: str, log: Path) -> dict[str, Any]:
    with _server(workers, log) as (proc, port):
        pids = _pids(proc.pid)
        idle_rss = _rss(pids)
        with Bystanders(port, pids) as bystanders:
            bystanders.sample(3)
            before = bystanders.summary()
            bystanders.latencies.clear()
            socks = ATTACKS[name](port, 64 * workers if name != "header-flood" else 32, bystanders)
            during = bystanders.summary()
        got = Counter(_status(sock) for sock in socks)
        closed = _closed(port)
        for sock in socks:
            sock.close()
    return {
        "workers": workers,
        "attack": name,
        "idle_rss_mb": round(idle_rss / 1e6, 1),
        "before": before,
        "during": during,
        "attackers_got": dict(got),
        "server_closed": closed,
    }


def _closed(port: int) -> dict[str, float]:
    """scorer_connections_closed_total by reason (this worker's, or all in multiprocess mode)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    found = {}
    for line in text.splitlines():
        if line.startswith("scorer_connections_closed_total{"):
            reason = line.split('"')[1]
            found[reason] = float(line.rsplit(" ", 1)[1])
    return found


def drain(workers: int, log: Path) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    with _server(workers, log) as (proc, port):

        def client() -> None:
            connection: http.client.HTTPConnection | None = None
            fresh = True
            while True:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    try:
                        connection.connect()
                    except ConnectionError:  # refused, or reset in the accept queue
                        outcomes["refused"] += 1
                        return
                    fresh = True
                try:
                    connection.request("POST", "/v1/cross-entropy", GOOD, JSON)
                    response = connection.getresponse()
                    response.read()
                except (ConnectionError, http.client.HTTPException):
                    outcomes["reset before accept" if fresh else "lost"] += 1
                    connection.close()
                    connection = None
                    continue
                fresh = False
                outcomes["ok" if response.status == 200 else f"status {response.status}"] += 1
                if response.getheader("connection") == "close":
                    outcomes["ok, Connection: close"] += 1
                    connection.close()
                    connection = None

        threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        for thread in threads:
            thread.join(timeout=30)
    return {"workers": workers, "exit": code, **outcomes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--workers", default="1", help="comma-separated worker counts")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--drains", type=int, default=10, help="SIGTERM runs per worker count")
    parser.add_argument("--log", type=Path, default=Path("/tmp/bench-hostile.log"))
    options = parser.parse_args(argv)
    for workers in (int(w) for w in options.workers.split(",")):
        for name in filter(None, options.attacks.split(",")):
            print(json.dumps(attack(workers, name, options.log)), flush=True)
        for _ in range(options.drains):
            print(json.dumps(drain(workers, options.log)), flush=True)


if __name__ == "__main__":
    main()
