"""The service's /v2 beside MLServer 1.7 on the same Open Inference Protocol requests.

    .venv/bin/python -m bench.peer [--duration 5] [--rounds 3]

Servers (127.0.0.1 only, each under ``timeout`` in a process group of its own, killed by
its id at the end, on error and on Ctrl-C): ``ours``, ``python -m app.serve --workers 1``
as the image runs it (one compute thread, its default: ``--compute-threads``) but with
no access log; ``mlserver``, ``mlserver start bench/mlserver`` (runtime.py there: NumpyCodec
in, NumPy cross-entropy, NumpyCodec out), one process (parallel_workers 0), no access log,
metrics on as by default, gRPC on a free port (it cannot be turned off), from its own venv
bench/.venvs/mlserver, made from bench/mlserver/requirements.txt when missing or stale.
Both get the image's allocator settings.

Scenarios: POST /v2/models/cross-entropy/infer with the same V2 JSON body to both (float32
``logits`` [N, C], int64 ``labels`` [N], outputs ``loss`` and ``per_sample``), for
[64, 10] at 16 connections and [2048, 1000] at 4; and for ours also the same batch as
Triton binary tensors (Inference-Header-Content-Length), answered in JSON. Each body is
checked once on each server (200, and the losses agree to 1e-6 relative). Then wrk (one
thread, bench/post.lua) runs ``--duration`` seconds per run, longer for slow requests
(up to 60 s), the servers taking turns, ``--rounds`` times; any non-2xx answer or
socket error fails the run. Reports medians of req/s, latency, logits/s and server CPU per
request, and ours/MLServer req/s; writes ``bench/results/peer-mlserver.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench._timing import machine, table, wait_for_quiet, write_results
from bench.http import REPO, TUNABLES, Server, run_wrk
from bench.payloads import arrays

PEER = REPO / "bench" / "mlserver"
VENV = REPO / "bench" / ".venvs" / "mlserver"
INFER = "/v2/models/cross-entropy/infer"
OUTPUTS = ("loss", "per_sample")


@dataclass(frozen=True)
class Scenario:
    """One batch through one server in one encoding."""

    shape: tuple[int, int]
    server: str  # "ours" or "mlserver"
    binary: bool  # Triton binary tensors, else V2 JSON
    connections: int

    @property
    def name(self) -> str:
        return f"{self.shape[0]}x{self.shape[1]} c{self.connections}"

    @property
    def body(self) -> str:
        return "binary" if self.binary else "json"


def scenarios() -> list[Scenario]:
    """Per batch, in the order the runs take turns: ours, MLServer, ours binary."""
    out = []
    for shape, connections in (((64, 10), 16), ((2048, 1000), 4)):
        for server, binary in (("ours", False), ("mlserver", False), ("ours", True)):
            out.append(Scenario(shape, server, binary, connections))
    return out


def v2_body(shape: tuple[int, int], binary: bool) -> tuple[bytes, int | None]:
    """The request body, and the JSON header's length when tensors follow it in binary."""
    logits, labels = arrays(shape)
    outputs = [{"name": name} for name in OUTPUTS]
    tensors = (("logits", "FP32", logits), ("labels", "INT64", labels))
    if not binary:
        inputs = [
            {"name": n, "shape": list(a.shape), "datatype": t, "data": a.ravel()}
            for n, t, a in tensors
        ]
        content = {"inputs": inputs, "outputs": outputs}
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), None
    blobs = [a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes() for _, _, a in tensors]
    inputs = [
        {
            "name": n,
            "shape": list(a.shape),
            "datatype": t,
            "parameters": {"binary_data_size": len(b)},
        }
        for (n, t, a), b in zip(tensors, blobs, strict=True)
    ]
    header = orjson.dumps({"inputs": inputs, "outputs": outputs})
    return header + b"".join(blobs), len(header)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Peer(Server):
    """bench.http's Server (process group, CPU seconds, stop), for any command; ready is
    ``/v2/health/ready``."""

    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.workers = 1
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "GLIBC_TUNABLES": TUNABLES, **env},
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def wait_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}; see {self.log.name}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/v2/health/ready")
                if conn.getresponse().status == 200:
                    self._wait_idle(deadline)  # imported and warmed up
                    return
            time.sleep(0.2)
        raise RuntimeError(f"not ready in {limit:.0f} s; see {self.log.name}")


def ensure_venv() -> Path:
    """bench/.venvs/mlserver with the pinned requirements; reinstalled when they change."""
    requirements = PEER / "requirements.txt"
    stamp = VENV / "requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != digest:
        python = shutil.which("python3.11")
        if python is None:
            raise RuntimeError("python3.11 is needed for bench/.venvs/mlserver")
        print(f"installing {VENV} from {requirements}", file=sys.stderr, flush=True)
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--disable-pip-version-check", "-r", str(requirements)], check=True)
        stamp.write_text(digest + "\n")
    return VENV / "bin" / "mlserver"


@contextlib.contextmanager
def servers(compute_threads: int, lifetime: int, log: Path) -> Iterator[dict[str, Server]]:
    """Both servers, ready; stopped by their process group ids on the way out."""
    bound = ["timeout", "--kill-after=5", str(lifetime)]
    mlserver = ensure_venv()
    ours_port, ml_ports = free_port(), [free_port() for _ in range(3)]
    ours = [sys.executable, "-m", "app.serve", "--host", "127.0.0.1", "--port", str(ours_port)]
    ours += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    # --no-access-log turns off uvicorn's; SCORER_ACCESS_LOG the service's own (MLServer's
    # is off through "debug": false in bench/mlserver/settings.json).
    ours_env = {"SCORER_COMPUTE_THREADS": str(compute_threads), "SCORER_ACCESS_LOG": "false"}
    names = ("MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT", "MLSERVER_METRICS_PORT")
    ml_env = {name: str(port) for name, port in zip(names, ml_ports, strict=True)}
    commands = {
        "ours": ([*bound, *ours], ours_env, ours_port),
        "mlserver": ([*bound, str(mlserver), "start", str(PEER)], ml_env, ml_ports[0]),
    }
    with contextlib.ExitStack() as stack:
        running: dict[str, Server] = {}
        for name, (command, env, port) in commands.items():
            print(f"starting {name}", file=sys.stderr, flush=True)
            server = Peer(command, env, port, log)
            stack.callback(server.stop)
            server.wait_ready()
            running[name] = server
        yield running


def check(port: int, payload: bytes, header_length: int | None) -> float:
    """One request: 200 with a loss, else raise; returns the loss."""
    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers = {"Content-Type": "application/octet-stream"}
        headers["Inference-Header-Content-Length"] = str(header_length)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", INFER, payload, headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{port}: {response.status} {data[:300]!r}")
    outputs = {o["name"]: o for o in json.loads(data)["outputs"]}
    if set(outputs) != set(OUTPUTS):
        raise RuntimeError(f"{port}: outputs {sorted(outputs)}, not {OUTPUTS}")
    loss: float = outputs["loss"]["data"][0]
    return loss


def wrk(port: int, scenario: Scenario, body: Path, header: int | None, seconds: float) -> Any:
    """One wrk run of bench/post.lua; its JSON summary."""
    content_type = "application/octet-stream" if header is not None else "application/json"
    extra = () if header is None else (f"Inference-Header-Content-Length: {header}",)
    url = f"http://127.0.0.1:{port}{INFER}"
    return run_wrk(url, scenario.connections, seconds, body, content_type, extra)


def run(duration: float, rounds: int, compute_threads: int, log: Path) -> list[dict[str, Any]]:
    """Every scenario ``rounds`` times, the servers taking turns; one record per run."""
    records: list[dict[str, Any]] = []
    lifetime = int(900 + rounds * 6 * (60 + 30))
    with (
        tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp,
        servers(compute_threads, lifetime, log) as running,
    ):
        shapes = dict.fromkeys(s.shape for s in scenarios())
        for shape in shapes:
            group = [s for s in scenarios() if s.shape == shape]
            bodies, seconds, losses = {}, {}, {}
            for s in group:
                payload, header = v2_body(shape, s.binary)
                path = Path(tmp) / f"{s.body}-{shape[0]}x{shape[1]}"
                path.write_bytes(payload)
                port = running[s.server].port
                start = time.perf_counter()
                losses[s] = check(port, payload, header)
                single = time.perf_counter() - start
                # Long enough that the requests in flight at the end, which wrk does not
                # count (about connections / 2 requests' work), are 2.5% at most.
                seconds[s] = min(max(duration, 20 * s.connections * single), 60)
                bodies[s] = (path, header)
                wrk(port, s, path, header, 1 if single < 0.5 else 2 * single)  # warm-up
            reference = losses[group[0]]
            for s, loss in losses.items():
                if abs(loss - reference) > 1e-6 * abs(reference):
                    raise RuntimeError(f"{s}: loss {loss!r} but ours says {reference!r}")
            for index in range(rounds):
                for s in group:
                    server = running[s.server]
                    background = wait_for_quiet(patience=10)
                    cpu = server.cpu_seconds()
                    result = wrk(server.port, s, *bodies[s], seconds[s])
                    result["server_cpu_s"] = server.cpu_seconds() - cpu
                    errors = ("status_errors", "connect_errors", "read_errors", "write_errors")
                    if any(result[k] for k in (*errors, "timeouts")) or not result["requests"]:
                        raise RuntimeError(f"{s.name} {s.server} {s.body}: errors in {result}")
                    wall = result["duration_us"] / 1e6
                    result["rps"] = result["requests"] / wall
                    result["logits_per_s"] = result["rps"] * shape[0] * shape[1]
                    result["server_cpu_us_per_request"] = (
                        result["server_cpu_s"] / result["requests"] * 1e6
                    )
                    print(
                        f"  round {index + 1} {s.name} {s.server} {s.body}: "
                        f"{result['rps']:.1f} req/s, p50 {result['p50_us'] / 1e3:.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
                    records.append(
                        {
                            **asdict(s),
                            "scenario": s.name,
                            "round": index + 1,
                            "loss": losses[s],
                            "background_before_cores": background,
                            **result,
                        }
                    )
    return records


def summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over the rounds for each scenario, server and body; ours/MLServer req/s."""
    keys = dict.fromkeys((r["scenario"], r["server"], r["binary"]) for r in records)
    rows = []
    for scenario, server, binary in keys:
        runs = [
            r
            for r in records
            if (r["scenario"], r["server"], r["binary"]) == (scenario, server, binary)
        ]
        median = {
            k: statistics.median(r[k] for r in runs)
            for k in ("rps", "p50_us", "p99_us", "logits_per_s", "server_cpu_us_per_request")
        }
        rows.append(
            {
                "scenario": scenario,
                "server": server,
                "binary": binary,
                "rounds": len(runs),
                **median,
            }
        )
    for row in rows:
        peer = next(
            r for r in rows if r["scenario"] == row["scenario"] and r["server"] == "mlserver"
        )
        row["ratio_vs_mlserver_json"] = row["rps"] / peer["rps"]
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    headers = [
        "scenario", "server", "body", "req/s", "p50 ms", "p99 ms", "logits/s",
        "server CPU µs/req", "req/s ÷ MLServer JSON",
    ]  # fmt: skip
    cells = [
        [
            r["scenario"],
            r["server"],
            "binary" if r["binary"] else "json",
            f"{r['rps']:.1f}",
            f"{r['p50_us'] / 1e3:.2f}",
            f"{r['p99_us'] / 1e3:.2f}",
            f"{r['logits_per_s']:.3g}",
            f"{r['server_cpu_us_per_request']:.0f}",
            f"{r['ratio_vs_mlserver_json']:.2f}",
        ]
        for r in rows
    ]
    return table(headers, cells)


def mlserver_version() -> str:
    python = VENV / "bin" / "python"
    code = "import mlserver; print(mlserver.__version__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server per scenario")
    parser.add_argument(
        "--compute-threads", type=int, default=1, help="SCORER_COMPUTE_THREADS for ours"
    )
    args = parser.parse_args(argv)
    # SIGINT and SIGTERM unwind, so that the servers are stopped on the way out (SIGINT
    # too when started in the background, where the shell has it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log = Path(tempfile.gettempdir()) / "bench-peer-servers.log"
    records = run(args.duration, args.rounds, args.compute_threads, log)
    rows = summary(records)
    print(report(rows))
    about = {**machine(), "mlserver": mlserver_version(), "compute_threads": args.compute_threads}
    path = write_results("peer-mlserver", {"machine": about, "summary": rows, "records": records})
    print(f"\nwritten: {path}; server logs: {log}", file=sys.stderr)


if __name__ == "__main__":
    main()
