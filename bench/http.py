"""HTTP benchmark: the service beside four reference servers, with wrk on 127.0.0.1.

    /work/bench-venv/bin/python -m bench.http [--workers 1,2] [--duration 5]

Servers (uvicorn, same flags and the image's allocator settings, 127.0.0.1 only): ``app``
(app.main:app through ``python -m app.serve`` as the image runs it, a listening socket
per worker; the service with validation and diagnostics on, ``SCORER_COMPUTE_THREADS``
= cores / workers), ``obvious`` (pydantic ``list[list[float]]`` body, default JSON
response; JSON lists only), ``raw`` (orjson / msgspec straight to NumPy, no validation,
no diagnostics), ``echo`` (returns the body it read through FastAPI: the issue's floor)
and ``floor`` (the same in plain ASGI, reading as the service does). Each server runs
under ``timeout`` and is killed by its process group id at the end.

Scenarios: [64, 10] JSON and msgpack at 1 and 16 connections; [4096, 1000] float32
msgpack tensor with probabilities returned; [4096, 1000] JSON lists. The load generator
is wrk (Debian), one thread; its CPU time is recorded beside the servers', so a run where
the generator is the bottleneck says so. Writes ``bench/results/http.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

from bench._timing import machine, table, wait_for_quiet, write_results
from bench.payloads import MEDIA_TYPES, arrays, body

REPO = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "post.lua"
SERVERS = {
    "app": "app.main:app",
    "obvious": "bench.servers.obvious:app",
    "raw": "bench.servers.raw:app",
    "echo": "bench.servers.echo:app",
    "floor": "bench.servers.floor:app",
}
CLOCK = os.sysconf("SC_CLK_TCK")
# The allocator settings of the image (Dockerfile), for every server alike.
TUNABLES = "glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=134217728"


def busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all cores) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK


@dataclass(frozen=True)
class Scenario:
    """One load: a body, a media type and a number of connections."""

    name: str
    shape: tuple[int, int]
    encoding: str
    tensor: bool
    outputs: tuple[str, ...]
    connections: int

    @property
    def logits_bytes(self) -> int:
        """Bytes of the float32 logits the body carries."""
        return self.shape[0] * self.shape[1] * 4


def scenarios(workers: int) -> list[Scenario]:
    """The issue's scenarios; large bodies use one connection per worker."""
    small, large = (64, 10), (4096, 1000)
    per, probs = ("per_sample",), ("per_sample", "probs")
    out = []
    for encoding in ("json", "msgpack"):
        for connections in (1, 16):
            name = f"64x10 {encoding} c{connections}"
            out.append(Scenario(name, small, encoding, False, per, connections))
    out.append(
        Scenario(f"4096x1000 f32 tensor+probs c{workers}", large, "msgpack", True, probs, workers)
    )
    out.append(Scenario(f"4096x1000 json c{workers}", large, "json", False, per, workers))
    return out


def supports(server: str, scenario: Scenario) -> bool:
    """The obvious endpoint takes JSON lists only."""
    return server != "obvious" or (scenario.encoding == "json" and not scenario.tensor)


class Server:
    """A uvicorn process group on 127.0.0.1, bounded by ``timeout``, killed by its pgid."""

    def __init__(self, target: str, workers: int, lifetime: int, log: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [
            "timeout", "--kill-after=5", str(lifetime),
            # The service runs as the image runs it (a listening socket per worker);
            # the references as a user runs uvicorn.
            *([sys.executable, "-m", "app.serve"] if target == SERVERS["app"]
              else [sys.executable, "-m", "uvicorn", target]),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.log = log.open("ab")
        # The service as a deployment with fewer workers than cores would set it up: a
        # large batch may use the cores no worker has (SCORER_COMPUTE_THREADS in
        # docs/configuration.md).
        # SCORER_* reaches the service only; the image's allocator settings, every server.
        threads = max(1, (os.cpu_count() or 1) // workers)
        env = {**os.environ, "SCORER_COMPUTE_THREADS": str(threads), "GLIBC_TUNABLES": TUNABLES}
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=self.log, stderr=self.log, start_new_session=True
        )
        self.workers = workers

    def wait_ready(self, limit: float = 60.0) -> None:
        """Until every worker answers (uvicorn workers start one after the other)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}; see {self.log.name}"
                )
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/openapi.json")
                conn.getresponse().read()
                if len(self.pids()) >= self.workers + (self.workers > 1):
                    self._wait_idle(deadline)
                    return
            time.sleep(0.2)
        raise RuntimeError("server not ready in time")

    def _wait_idle(self, deadline: float) -> None:
        """Until the group stops using CPU: every worker has imported and warmed up.

        A worker listens once its application has started. The service's workers each
        have a socket of their own, and wrk opens all of its connections at once: a
        worker not yet listening would get none of them for the whole run.
        """
        before = self.cpu_seconds()
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - before < 0.02 else 0
            before = now

    def pids(self) -> list[int]:
        """Processes of the group (timeout, uvicorn, its workers)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) == self.process.pid and fields[0] != "Z":
                        found.append(int(entry.name))
        return [pid for pid in found if pid != self.process.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the group's live processes."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / CLOCK

    def stop(self) -> None:
        """SIGTERM the process group by its id, then SIGKILL what is left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.log.close()


@contextlib.contextmanager
def serving(target: str, workers: int, lifetime: int, log: Path) -> Iterator[Server]:
    server = Server(target, workers, lifetime, log)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def check(server: Server, scenario: Scenario, payload: bytes) -> float:
    """One request: 200 and a loss (or the echo), else raise; returns its seconds."""
    media = MEDIA_TYPES[scenario.encoding]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    start = time.perf_counter()
    conn.request("POST", "/v1/cross-entropy", payload, {"Content-Type": media, "Accept": media})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"{scenario.name}: {response.status} {data[:300]!r}")
    if data != payload:  # not the echo: a loss must be there
        content = (
            msgspec.msgpack.decode(data) if scenario.encoding == "msgpack" else json.loads(data)
        )
        if not isinstance(content.get("loss"), float):
            raise RuntimeError(f"{scenario.name}: no loss in {data[:300]!r}")
    return elapsed


def run_wrk(
    url: str,
    connections: int,
    seconds: float,
    body: Path,
    content_type: str,
    headers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One wrk run (one thread) of bench/post.lua POSTing ``body`` to ``url``.

    Its JSON summary, plus ``wrk_cpu_s``: wrk's own CPU seconds. ``headers`` are
    "Name: value" lines sent with every request.
    """
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "120s",
        *(arg for header in headers for arg in ("-H", header)), "-s", str(LUA), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_CT": content_type}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 180)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    result["wrk_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def wrk(port: int, scenario: Scenario, path: Path, seconds: float) -> dict[str, Any]:
    """Run wrk once on /v1/cross-entropy; its summary plus its own CPU seconds."""
    url = f"http://127.0.0.1:{port}/v1/cross-entropy"
    return run_wrk(url, scenario.connections, seconds, path, MEDIA_TYPES[scenario.encoding])


def measure(
    server: Server, scenario: Scenario, path: Path, payload: bytes, duration: float
) -> dict[str, Any]:
    """Check, warm up, then one measured wrk run with the server's CPU seconds."""
    single = check(server, scenario, payload)
    # wrk counts the requests completed in its window: the one in flight at the end is
    # lost, which at 6 requests of ~1.2 s (the obvious endpoint's large JSON) made its
    # req/s 15% low. Long enough for 40 requests, that loss is at most 2.5%.
    seconds = min(max(duration, 40 * single), 60)
    wrk(server.port, scenario, path, 1 if single < 0.5 else 2 * single)  # warm-up
    background = wait_for_quiet(patience=10)
    cpu, busy = server.cpu_seconds(), busy_seconds()
    result = wrk(server.port, scenario, path, seconds)
    result["server_cpu_s"] = server.cpu_seconds() - cpu
    # Whatever else ran on the machine meanwhile (other users, the kernel's network work).
    others = busy_seconds() - busy - result["server_cpu_s"] - result["wrk_cpu_s"]
    wall = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / wall
    result["mb_s_logits"] = result["rps"] * scenario.logits_bytes / 1e6
    result["server_cpu_cores"] = result["server_cpu_s"] / wall
    # CPU per request is the figure least disturbed by other load on a shared machine.
    result["server_cpu_us_per_request"] = result["server_cpu_s"] / result["requests"] * 1e6
    result["wrk_cpu_cores"] = result["wrk_cpu_s"] / wall
    result["other_cpu_cores"] = max(0.0, others / wall)
    result["single_request_s"] = single
    result["background_before_cores"] = background
    if result["status_errors"] or result["timeouts"] or result["requests"] == 0:
        raise RuntimeError(f"{scenario.name}: errors in {result}")
    return result


def run(
    servers: list[str],
    workers_list: list[int],
    duration: float,
    log: Path,
    only: str | None = None,
) -> list[dict[str, Any]]:
    """Every scenario through every server, for each worker count; one record per run.

    All servers of a worker count run at once (an idle one costs nothing) and each
    scenario visits them back to back, so that a change in the machine's background load
    falls on neighbouring measurements rather than on one server's whole series.
    ``only`` keeps the scenarios whose name contains it.
    """
    records = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        for workers in workers_list:
            with contextlib.ExitStack() as stack:
                running = {}
                for name in servers:
                    print(f"workers={workers}: starting {name}", file=sys.stderr, flush=True)
                    running[name] = stack.enter_context(serving(SERVERS[name], workers, 3600, log))
                for scenario in scenarios(workers):
                    if only is not None and only not in scenario.name:
                        continue
                    payload = body(
                        scenario.shape, scenario.encoding, scenario.tensor, scenario.outputs
                    )
                    path = Path(tmp) / "body"
                    path.write_bytes(payload)
                    for name, server in running.items():
                        if not supports(name, scenario):
                            continue
                        result = measure(server, scenario, path, payload, duration)
                        print(
                            f"  {scenario.name} {name}: {result['rps']:.1f} req/s "
                            f"p50 {result['p50_us'] / 1e3:.2f} ms, "
                            f"{result['server_cpu_us_per_request']:.0f} µs CPU/req",
                            file=sys.stderr,
                            flush=True,
                        )
                        records.append(
                            {
                                "server": name,
                                "workers": workers,
                                "scenario": asdict(scenario),
                                **result,
                            }
                        )
    return records


def _find(
    records: list[dict[str, Any]], server: str, workers: int, scenario: str
) -> dict[str, Any] | None:
    for r in records:
        if (r["server"], r["workers"], r["scenario"]["name"]) == (server, workers, scenario):
            return r
    return None


def report(records: list[dict[str, Any]]) -> str:
    """Results table, then the ratios the issue sets targets on."""
    rows = []
    for r in records:
        large = r["scenario"]["shape"][0] > 64
        rows.append(
            [
                r["scenario"]["name"],
                r["workers"],
                r["server"],
                f"{r['rps']:.1f}",
                f"{r['p50_us'] / 1e3:.2f}",
                f"{r['p99_us'] / 1e3:.2f}",
                f"{r['mb_s_logits']:.0f}" if large else "",
                f"{r['server_cpu_cores']:.2f}",
                f"{r['server_cpu_us_per_request']:.0f}",
                f"{r['wrk_cpu_cores']:.2f}",
                f"{r['other_cpu_cores']:.2f}",
            ]
        )
    headers = [
        "scenario",
        "workers",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "MB/s logits",
        "server cores",
        "server CPU µs/req",
        "wrk cores",
        "other cores",
    ]
    lines = [table(headers, rows), ""]
    ratio_rows = []
    for workers in sorted({r["workers"] for r in records}):
        for scenario in dict.fromkeys(
            r["scenario"]["name"] for r in records if r["workers"] == workers
        ):
            ours = _find(records, "app", workers, scenario)
            if ours is None:
                continue
            cells = [scenario, workers]
            for other in ("obvious", "raw", "echo"):
                ref = _find(records, other, workers, scenario)
                cells.append(f"{ours['rps'] / ref['rps']:.2f}" if ref else "-")
            for other in ("obvious", "raw"):
                ref = _find(records, other, workers, scenario)
                key = "server_cpu_us_per_request"
                cells.append(f"{ref[key] / ours[key]:.2f}" if ref else "-")
            for other in ("echo", "floor"):
                ref = _find(records, other, workers, scenario)
                cells.append(f"{ours['p50_us'] / ref['p50_us']:.2f}" if ref else "-")
            one = _find(records, "app", 1, scenario.replace(f"c{workers}", "c1"))
            if workers > 1 and "64x10" in scenario:
                one = _find(records, "app", 1, scenario)
            cells.append(f"{ours['rps'] / one['rps']:.2f}" if one and workers > 1 else "")
            ratio_rows.append(cells)
    headers = [
        "scenario",
        "workers",
        "app/obvious req/s",
        "app/raw req/s",
        "app/echo req/s",
        "obvious/app CPU per req",
        "raw/app CPU per req",
        "app/echo p50 time",
        "app/floor p50 time",
        "app vs 1 worker",
    ]
    lines.append(table(headers, ratio_rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--name", default="http", help="results file name")
    parser.add_argument("--only", help='scenarios whose name contains this, e.g. "64x10 json"')
    args = parser.parse_args(argv)
    log = Path(tempfile.gettempdir()) / "bench-http-servers.log"
    arrays((1, 1))  # import NumPy before the clock starts
    records = run(
        args.servers.split(","),
        [int(w) for w in args.workers.split(",")],
        args.duration,
        log,
        args.only,
    )
    print(report(records))
    path = write_results(args.name, {"machine": machine(), "records": records})
    print(f"\nwritten: {path}; server logs: {log}", file=sys.stderr)


if __name__ == "__main__":
    main()
