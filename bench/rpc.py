"""gRPC beside REST: the service's ModelInfer against its /v2 binary REST, and against MLServer.

    .venv/bin/python -m bench.rpc [--duration 5] [--rounds 3] [--groups rest,peer]

Servers (127.0.0.1 only, each under ``timeout`` in a process group of its own, stopped by
its id at the end, on error and on Ctrl-C): ``ours``, ``python -m app.serve --workers 1``
with its gRPC server on a free port (``SCORER_GRPC_PORT``), one compute thread (its
default: ``--compute-threads``) and no access log; ``floor``, ``python -m bench.rpc
floor``: the echo of each transport in one uvloop process as the service runs them (a
``grpc.aio`` ModelInfer that returns the request's bytes, and bench/servers/floor.py
under uvicorn), what the transports cost without the service; ``mlserver``, MLServer
1.7.1 as bench/peer.py runs it (bench/mlserver, its venv from ``bench.peer.ensure_venv``),
with ``MLSERVER_GRPC_MAX_MESSAGE_LENGTH`` at the service's 64 MiB body limit (gRPC's
default of 4 MiB refuses the [2048, 1000] request). All get the image's allocator settings.

Two groups of scenarios, every request the same seeded batch (float32 ``logits`` [N, C],
int64 ``labels`` [N], bench.payloads.arrays):

- ``rest``: the service's ModelInfer (``raw_input_contents`` in, ``raw_output_contents``
  out) against POST /v2/models/cross-entropy/infer with Triton binary tensors
  (Inference-Header-Content-Length), outputs ``loss``, ``per_sample`` and ``probs``, each
  asked for with ``binary_data: true`` on REST so that the probabilities come back binary
  too: [4096, 1000] at 1 and 4 concurrent requests, [64, 10] at 16. Beside them the same
  REST requests through wrk (bench/post.lua, as bench.peer sends them: a check on the
  Python client) and the same bodies to the two echoes (``--no-wrk``, ``--no-floors``).
- ``peer``: ModelInfer with the same serialized bytes to the service and to MLServer,
  outputs ``loss`` and ``per_sample`` (what its runtime returns), [64, 10] at 16 and
  [2048, 1000] at 4: bench.peer's scenarios. MLServer reads ``raw_input_contents`` (it
  unpacks them into Python lists with ``struct``) and answers in ``raw_output_contents``
  when the request came raw.

The load generator is a separate process (``python -m bench.rpc client``, so that its CPU
is not the server's): asyncio on uvloop, one coroutine per concurrent request for
``--duration`` seconds (longer for slow requests: 40 of them, at most 60 s), each sending
a pre-serialized request and waiting for the whole answer. gRPC goes through one
``grpc.aio`` channel (one HTTP/2 connection, as a client holds one) with
``channel.unary_unary`` and no serializers, so the client never parses protobuf; REST
through one keep-alive HTTP/1.1 connection per coroutine, read by a BufferedProtocol into
one reused buffer (reconnecting when the server's keep-alive ends). The same client on
both sides of each gRPC/REST ratio: wrk cannot speak gRPC, and a C client on one side only
would charge the Python client's cost to the other. Throughput is the requests completed
over the time from the start to the last answer; the server's CPU is read from /proc for
its whole process group around the timed window only (the client warms up, then waits for
the go), the client's own from getrusage.

Checks: the first answer of every run is decoded (raw or typed contents, binary or JSON
REST outputs) before its timing starts: within the ``rest`` group every output is the
same bits over gRPC and REST, and an echo must return the request; within ``peer`` the
losses agree to 1e-6 relative. Servers take turns scenario by scenario, ``--rounds``
times, each run after waiting for the machine to go quiet. Reports medians and ranges of
req/s, p50/p99 latency and CPU per request, and ratios round by round (gRPC / REST, each
over its echo, ours / MLServer); writes ``bench/results/rpc.json`` (``--name``) with the
checks' findings; server logs in ``/tmp/bench-rpc-servers.log``. The whole run is bounded
by ``--limit`` seconds, each client by five minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._timing import machine, table, wait_for_quiet, write_results
from bench.http import REPO, TUNABLES, Server, busy_seconds, run_wrk
from bench.payloads import arrays
from bench.peer import INFER, PEER, Peer, ensure_venv, free_port, mlserver_version

MODEL = "cross-entropy"
METHOD = "/inference.GRPCInferenceService/ModelInfer"
WITH_PROBS = ("loss", "per_sample", "probs")
PEER_OUTPUTS = ("loss", "per_sample")
# The service's own body limit; MLServer's gRPC refuses messages over 4 MiB without it.
MAX_MESSAGE = 64 * 1024 * 1024
DTYPES = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8"}
CONTENTS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
}


@dataclass(frozen=True)
class Run:
    """One server through one transport on one batch and concurrency."""

    group: str  # "rest": our gRPC against our REST; "peer": ours against MLServer
    shape: tuple[int, int]
    connections: int
    server: str  # "ours", "mlserver" or "floor" (the echoes of both transports)
    transport: str  # "grpc", "rest" (the Python client) or "rest-wrk"

    @property
    def scenario(self) -> str:
        return f"{self.shape[0]}x{self.shape[1]} c{self.connections}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return WITH_PROBS if self.group == "rest" else PEER_OUTPUTS

    @property
    def label(self) -> str:
        return f"{self.group} {self.scenario} {self.server} {self.transport}"


def plan(groups: list[str], wrk: bool, floors: bool) -> list[list[Run]]:
    """Scenarios in order, each the runs that take turns on it."""
    out = []
    if "rest" in groups:
        for shape, connections in (((4096, 1000), 1), ((4096, 1000), 4), ((64, 10), 16)):
            runs = [Run("rest", shape, connections, "ours", t) for t in ("grpc", "rest")]
            if wrk:
                runs.append(Run("rest", shape, connections, "ours", "rest-wrk"))
            if floors:
                runs += [Run("rest", shape, connections, "floor", t) for t in ("grpc", "rest")]
            out.append(runs)
    if "peer" in groups:
        for shape, connections in (((64, 10), 16), ((2048, 1000), 4)):
            servers = ("ours", "mlserver")
            out.append([Run("peer", shape, connections, s, "grpc") for s in servers])
    return out


# --- requests and answers ------------------------------------------------------------------


def _tensors(shape: tuple[int, int]) -> list[tuple[str, str, np.ndarray[Any, Any]]]:
    logits, labels = arrays(shape)
    return [("logits", "FP32", logits.astype("<f4")), ("labels", "INT64", labels.astype("<i8"))]


def grpc_request(shape: tuple[int, int], outputs: tuple[str, ...]) -> bytes:
    """A serialized ModelInferRequest: inputs in ``raw_input_contents``, outputs by name."""
    from app.api.grpc.protos import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=MODEL)
    for name, datatype, array in _tensors(shape):
        request.inputs.add(name=name, datatype=datatype, shape=array.shape)
        request.raw_input_contents.append(array.tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return bytes(request.SerializeToString())


def rest_request(shape: tuple[int, int], outputs: tuple[str, ...]) -> tuple[bytes, int]:
    """A /v2 body with binary tensors, every output asked for binary; the header's length."""
    tensors = _tensors(shape)
    inputs = [
        {
            "name": name,
            "shape": list(array.shape),
            "datatype": datatype,
            "parameters": {"binary_data_size": array.nbytes},
        }
        for name, datatype, array in tensors
    ]
    wanted = [{"name": name, "parameters": {"binary_data": True}} for name in outputs]
    header = json.dumps({"inputs": inputs, "outputs": wanted}).encode()
    return header + b"".join(a.tobytes() for _, _, a in tensors), len(header)


def grpc_outputs(data: bytes) -> tuple[dict[str, np.ndarray[Any, Any]], str]:
    """A ModelInferResponse's outputs as arrays, and where they came: raw or typed contents."""
    from app.api.grpc.protos import grpc_predict_v2_pb2 as pb

    response = pb.ModelInferResponse.FromString(data)
    raw = list(response.raw_output_contents)
    values = {}
    for index, out in enumerate(response.outputs):
        if raw:
            array = np.frombuffer(raw[index], DTYPES[out.datatype])
        else:
            array = np.array(getattr(out.contents, CONTENTS[out.datatype]), DTYPES[out.datatype])
        values[out.name] = array.reshape(tuple(out.shape))
    return values, "raw_output_contents" if raw else "contents"


def rest_outputs(data: bytes, header_length: int | None) -> dict[str, np.ndarray[Any, Any]]:
    """A /v2 answer's outputs as arrays, binary after the JSON header or in ``data``."""
    header = json.loads(data if header_length is None else data[:header_length])
    offset = header_length or 0
    values = {}
    for out in header["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            array = np.array(out["data"], DTYPES[out["datatype"]])
        else:
            array = np.frombuffer(data[offset : offset + size], DTYPES[out["datatype"]])
            offset += size
        values[out["name"]] = array.reshape(out["shape"])
    return values


# --- the load generator (its own process) --------------------------------------------------

Send = Callable[[], Awaitable[bytes | memoryview]]


async def _grpc_senders(port: int, body: bytes, count: int) -> tuple[list[Send], Any]:
    from grpc import aio

    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    channel = aio.insecure_channel(f"127.0.0.1:{port}", options=options)
    await asyncio.wait_for(channel.channel_ready(), 30)
    call = channel.unary_unary(METHOD)  # no serializers: bytes in, bytes out

    async def send() -> bytes | memoryview:
        data: bytes = await call(body, timeout=120)
        return data

    return [send] * count, channel


class _HttpConnection(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection reading each answer into one reused buffer.

    The socket is read straight into the buffer (no chunk objects, no copies), which
    grows to the largest answer once; an answer is a view of it, valid until the next.
    """

    def __init__(self) -> None:
        self.buffer = bytearray(1 << 16)
        self.filled = 0
        self.body_at = 0  # where the body starts once the head is read, else 0
        self.length = 0
        self.status = b""
        self.headers: dict[bytes, bytes] = {}
        self.answer: asyncio.Future[memoryview] | None = None
        self.transport: Any = None  # uvloop's, not an asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("closed by the server"))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.filled == len(self.buffer):
            self._grow(2 * len(self.buffer))
        return memoryview(self.buffer)[self.filled :]

    def _grow(self, size: int) -> None:
        # A new buffer: the transport may still hold a view of the old one.
        grown = bytearray(size)
        grown[: self.filled] = memoryview(self.buffer)[: self.filled]
        self.buffer = grown

    def buffer_updated(self, nbytes: int) -> None:
        self.filled += nbytes
        if not self.body_at:
            end = self.buffer.find(b"\r\n\r\n", 0, self.filled)
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            self.status = lines[0]
            self.headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                self.headers[name.strip().lower()] = value.strip()
            self.body_at = end + 4
            self.length = int(self.headers[b"content-length"])
            if self.body_at + self.length > len(self.buffer):
                self._grow(self.body_at + self.length)
        if self.filled >= self.body_at + self.length and self.answer is not None:
            view = memoryview(self.buffer)[self.body_at : self.body_at + self.length]
            self.filled = self.body_at = 0  # one request at a time: nothing follows
            self.answer.set_result(view)

    async def send(self, parts: tuple[bytes, bytes]) -> memoryview:
        if self.transport.is_closing():
            raise ConnectionError("closed")
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.writelines(parts)
        view = await self.answer
        if self.status.split(b" ", 2)[1] != b"200":
            raise RuntimeError(f"{self.status!r}: {bytes(view[:300])!r}")
        return view


async def _rest_senders(
    port: int, body: bytes, header_length: int, count: int, last: dict[str, str]
) -> tuple[list[Send], Any]:
    head = (
        f"POST {INFER} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Inference-Header-Content-Length: {header_length}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()

    async def connect() -> _HttpConnection:
        _, connection = await loop.create_connection(_HttpConnection, "127.0.0.1", port)
        return connection

    connections = [await connect() for _ in range(count)]

    def sender(index: int) -> Send:
        async def send() -> bytes | memoryview:
            connection = connections[index]
            try:
                view = await connection.send((head, body))
            except ConnectionError:  # the server's keep-alive ended (5 s idle): once more
                connection = connections[index] = await connect()
                view = await connection.send((head, body))
            length = connection.headers.get(b"inference-header-content-length", b"")
            last["header_length"] = length.decode()
            return view

        return send

    class Closer:
        async def close(self) -> None:
            for connection in connections:
                connection.transport.close()

    return [sender(i) for i in range(count)], Closer()


async def _loop(send: Send, until: float, latencies: list[int]) -> None:
    while time.perf_counter() < until:
        start = time.perf_counter_ns()
        await send()
        latencies.append(time.perf_counter_ns() - start)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _client(args: argparse.Namespace) -> None:
    """Connect, answer once (saved), warm up, say READY; on GO, the timed run; its JSON."""
    body = Path(args.body).read_bytes()
    last: dict[str, str] = {}
    if args.kind == "grpc":
        senders, closer = await _grpc_senders(args.port, body, args.connections)
    else:
        senders, closer = await _rest_senders(
            args.port, body, args.header_length, args.connections, last
        )
    start = time.perf_counter()
    first = await senders[0]()
    single = time.perf_counter() - start
    Path(args.save).write_bytes(bytes(first))
    warm = time.perf_counter() + (1.0 if single < 0.5 else 2 * single)
    await asyncio.gather(*(_loop(send, warm, []) for send in senders))
    ready = {"single_s": single, "header_length": last.get("header_length")}
    print("READY " + json.dumps(ready), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    seconds = float(line.split()[1])
    latencies: list[int] = []
    cpu = _cpu()
    start = time.perf_counter()
    await asyncio.gather(*(_loop(send, start + seconds, latencies) for send in senders))
    wall = time.perf_counter() - start
    cpu = _cpu() - cpu
    await closer.close()
    ordered = sorted(latencies)
    result = {
        "requests": len(ordered),
        "duration_s": wall,
        "p50_us": ordered[len(ordered) // 2] / 1e3,
        "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e3,
        "max_us": ordered[-1] / 1e3,
        "client_cpu_s": cpu,
    }
    print("RESULT " + json.dumps(result), flush=True)


def client_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench.rpc client")
    parser.add_argument("--kind", choices=("grpc", "rest"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header-length", type=int, default=0)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--save", required=True, help="file for the first answer's bytes")
    parser.add_argument("--limit", type=float, default=300, help="seconds, all included")
    args = parser.parse_args(argv)
    signal.alarm(int(args.limit))  # bounded even if the parent is gone
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_client(args))


class Client:
    """``python -m bench.rpc client`` in a process group of its own; READY, GO, RESULT."""

    def __init__(self, run: Run, port: int, body: Path, header_length: int, save: Path) -> None:
        self.limit = 300.0
        command = [
            sys.executable, "-m", "bench.rpc", "client", "--kind", run.transport,
            "--port", str(port), "--body", str(body), "--header-length", str(header_length),
            "--connections", str(run.connections), "--save", str(save),
            "--limit", str(self.limit),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "GLIBC_TUNABLES": TUNABLES},  # the servers' allocator, too
            start_new_session=True,
        )

    def line(self, prefix: str, timeout: float) -> Any:
        """The next line starting with ``prefix``, parsed; raise when late or gone."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.process.stdout], [], [], left)[0]:
                raise RuntimeError(f"client: no {prefix} in {timeout:.0f} s")
            text = self.process.stdout.readline()
            if not text:
                raise RuntimeError(f"client exited ({self.process.wait()}) before {prefix}")
            if text.startswith(prefix + " "):
                return json.loads(text.removeprefix(prefix + " "))

    def go(self, seconds: float) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(f"GO {seconds}\n")
        self.process.stdin.flush()
        result = self.line("RESULT", seconds + 120)
        self.process.wait(30)
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


# --- servers -------------------------------------------------------------------------------


async def _floor(port: int, grpc_port: int) -> None:
    """Both transports' echo in one process on uvloop, as the service runs them: ModelInfer
    through ``grpc.aio`` returning the request's bytes, and bench/servers/floor.py's ASGI
    echo under uvicorn (httptools)."""
    import grpc
    import uvicorn
    from grpc import aio

    async def echo(body: bytes, context: Any) -> bytes:
        return body

    options = [
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
    ]
    server = aio.server(options=options)
    methods = {"ModelInfer": grpc.unary_unary_rpc_method_handler(echo)}
    service = METHOD.split("/")[1]
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, methods),))
    server.add_insecure_port(f"127.0.0.1:{grpc_port}")
    await server.start()
    config = uvicorn.Config(
        "bench.servers.floor:app",
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        http="httptools",
        loop="none",
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await server.stop(1)


def floor_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench.rpc floor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.install()
    asyncio.run(_floor(args.port, args.grpc_port))


@contextlib.contextmanager
def servers(
    groups: list[str], floors: bool, compute_threads: int, lifetime: int, log: Path
) -> Iterator[dict[str, tuple[Server, int]]]:
    """The servers the groups need, ready: each with its gRPC port; stopped on the way out."""
    bound = ["timeout", "--kill-after=5", str(lifetime)]
    ours_port, ours_grpc = free_port(), free_port()
    ours = [sys.executable, "-m", "app.serve", "--host", "127.0.0.1", "--port", str(ours_port)]
    ours += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    ours_env = {
        "SCORER_COMPUTE_THREADS": str(compute_threads),
        "SCORER_ACCESS_LOG": "false",
        "SCORER_GRPC": "true",
        "SCORER_GRPC_HOST": "127.0.0.1",
        "SCORER_GRPC_PORT": str(ours_grpc),
    }
    commands = {"ours": ([*bound, *ours], ours_env, ours_port, ours_grpc)}
    if floors:
        port, grpc_port = free_port(), free_port()
        command = [*bound, sys.executable, "-m", "bench.rpc", "floor", "--port", str(port)]
        commands["floor"] = ([*command, "--grpc-port", str(grpc_port)], {}, port, grpc_port)
    if "peer" in groups:
        mlserver = ensure_venv()
        ml_ports = [free_port() for _ in range(3)]
        names = ("MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT", "MLSERVER_METRICS_PORT")
        ml_env = {name: str(port) for name, port in zip(names, ml_ports, strict=True)}
        ml_env["MLSERVER_GRPC_MAX_MESSAGE_LENGTH"] = str(MAX_MESSAGE)
        command = [*bound, str(mlserver), "start", str(PEER)]
        commands["mlserver"] = (command, ml_env, ml_ports[0], ml_ports[1])
    with contextlib.ExitStack() as stack:
        running: dict[str, tuple[Server, int]] = {}
        for name, (command, env, port, grpc_port) in commands.items():
            print(f"starting {name}", file=sys.stderr, flush=True)
            server = Peer(command, env, port, log)
            stack.callback(server.stop)
            server.wait_ready()
            running[name] = (server, grpc_port)
        yield running


def wrk(port: int, run: Run, body: Path, header_length: int, seconds: float) -> dict[str, Any]:
    """One wrk run of bench/post.lua with the binary body; its summary and CPU seconds."""
    url = f"http://127.0.0.1:{port}{INFER}"
    header = (f"Inference-Header-Content-Length: {header_length}",)
    result = run_wrk(url, run.connections, seconds, body, "application/octet-stream", header)
    errors = ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
    if any(result[k] for k in errors) or not result["requests"]:
        raise RuntimeError(f"{run.label}: errors in {result}")
    result["duration_s"] = result.pop("duration_us") / 1e6
    result["client_cpu_s"] = result.pop("wrk_cpu_s")
    return result


# --- the runs ------------------------------------------------------------------------------


class Checker:
    """Every run's first answer against the scenario's first: same bits, or the peer's 1e-6."""

    def __init__(self) -> None:
        self.reference: dict[tuple[Any, ...], tuple[Run, dict[str, np.ndarray[Any, Any]]]] = {}
        self.notes: dict[str, Any] = {}

    def check(self, run: Run, values: dict[str, np.ndarray[Any, Any]]) -> float:
        if set(values) != set(run.outputs):
            raise RuntimeError(f"{run.label}: outputs {sorted(values)}, not {run.outputs}")
        loss = float(values["loss"].reshape(-1)[0])
        key = (run.group, run.shape)
        if key not in self.reference:
            self.reference[key] = (run, values)
            return loss
        first, expected = self.reference[key]
        if run.server == first.server:  # the same service: the same bits either way
            for name, array in values.items():
                if array.dtype != expected[name].dtype or not np.array_equal(array, expected[name]):
                    raise RuntimeError(f"{run.label}: {name} differs from {first.label}")
        else:
            ours = float(expected["loss"].reshape(-1)[0])
            if abs(loss - ours) > 1e-6 * abs(ours):
                raise RuntimeError(f"{run.label}: loss {loss!r}, ours {ours!r}")
            a = values["per_sample"].astype(np.float64)
            b = expected["per_sample"].astype(np.float64)
            self.notes[f"{run.scenario} loss relative difference"] = abs(loss - ours) / abs(ours)
            self.notes[f"{run.scenario} per_sample max relative difference"] = float(
                np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30))
            )
        return loss


def measure(
    run: Run,
    server: Server,
    port: int,
    files: dict[str, tuple[Path, int]],
    duration: float,
    checker: Checker,
    tmp: Path,
) -> dict[str, Any]:
    """One timed run: check the first answer, warm up, then time ``duration`` (or longer)."""
    kind = "grpc" if run.transport == "grpc" else "rest"
    body, header_length = files[kind]
    save = tmp / "answer"
    if run.transport == "rest-wrk":
        # The answer once through http.client, then wrk's warm-up and timed runs.
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/octet-stream"}
        headers["Inference-Header-Content-Length"] = str(header_length)
        conn.request("POST", INFER, body.read_bytes(), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{run.label}: {response.status} {data[:300]!r}")
        single = time.perf_counter() - start
        length = response.getheader("Inference-Header-Content-Length")
        loss = checker.check(run, rest_outputs(data, int(length) if length else None))
        wrk(port, run, body, header_length, 1 if single < 0.5 else 2 * single)
        seconds = min(max(duration, 40 * single), 60)
        background = wait_for_quiet(patience=10)
        cpu, busy = server.cpu_seconds(), busy_seconds()
        result = wrk(port, run, body, header_length, seconds)
    else:
        client = Client(run, port, body, header_length, save)
        try:
            ready = client.line("READY", client.limit)
            single = ready["single_s"]
            data = save.read_bytes()
            if run.server == "floor":  # an echo: the request's bytes come back
                if data != body.read_bytes():
                    raise RuntimeError(f"{run.label}: the echo differs from the request")
                values = {}
            elif kind == "grpc":
                values, where = grpc_outputs(data)
                checker.notes[f"{run.server} answers in"] = where
            else:
                length = ready["header_length"]
                values = rest_outputs(data, int(length) if length else None)
            loss = checker.check(run, values) if values else float("nan")
            seconds = min(max(duration, 40 * single), 60)
            background = wait_for_quiet(patience=10)
            cpu, busy = server.cpu_seconds(), busy_seconds()
            result = client.go(seconds)
        finally:
            client.stop()
    result["server_cpu_s"] = server.cpu_seconds() - cpu
    wall = result["duration_s"]
    others = busy_seconds() - busy - result["server_cpu_s"] - result["client_cpu_s"]
    result["rps"] = result["requests"] / wall
    result["server_cpu_us_per_request"] = result["server_cpu_s"] / result["requests"] * 1e6
    result["client_cpu_us_per_request"] = result["client_cpu_s"] / result["requests"] * 1e6
    result["server_cpu_cores"] = result["server_cpu_s"] / wall
    result["client_cpu_cores"] = result["client_cpu_s"] / wall
    result["other_cpu_cores"] = max(0.0, others / wall)
    result["background_before_cores"] = background
    result["single_request_s"] = single
    result["loss"] = loss
    return result


def run_all(
    groups: list[str],
    rounds: int,
    duration: float,
    compute_threads: int,
    wrk: bool,
    floors: bool,
    log: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every scenario ``rounds`` times, its runs taking turns; one record per run."""
    scenarios = plan(groups, wrk, floors)
    records: list[dict[str, Any]] = []
    checker = Checker()
    lifetime = int(600 + rounds * sum(len(s) for s in scenarios) * (60 + 60))
    with (
        tempfile.TemporaryDirectory(prefix="bench-rpc-") as name,
        servers(groups, floors, compute_threads, lifetime, log) as running,
    ):
        tmp = Path(name)
        # The bodies, written once: each group's batch, over gRPC and (group rest) REST.
        files: dict[tuple[str, tuple[int, int]], dict[str, tuple[Path, int]]] = {}
        for first in (runs[0] for runs in scenarios):
            path = tmp / f"{first.group}-{first.shape[0]}x{first.shape[1]}"
            path.with_suffix(".grpc").write_bytes(grpc_request(first.shape, first.outputs))
            mine = files.setdefault((first.group, first.shape), {})
            mine["grpc"] = (path.with_suffix(".grpc"), 0)
            if first.group == "rest":
                body, header_length = rest_request(first.shape, first.outputs)
                path.with_suffix(".rest").write_bytes(body)
                mine["rest"] = (path.with_suffix(".rest"), header_length)
        for index in range(rounds):
            for runs in scenarios:
                for run in runs:
                    server, grpc_port = running[run.server]
                    port = grpc_port if run.transport == "grpc" else server.port
                    mine = files[(run.group, run.shape)]
                    result = measure(run, server, port, mine, duration, checker, tmp)
                    print(
                        f"  round {index + 1} {run.label}: {result['rps']:.1f} req/s, "
                        f"p50 {result['p50_us'] / 1e3:.2f} ms, "
                        f"{result['server_cpu_us_per_request']:.0f} µs server CPU/req",
                        file=sys.stderr,
                        flush=True,
                    )
                    records.append(
                        {**asdict(run), "scenario": run.scenario, "round": index + 1, **result}
                    )
    return records, checker.notes


# --- reports -------------------------------------------------------------------------------

# The ratios: each pair's first over its second, round by round.
PAIRS = {
    "rest": [
        (("ours", "grpc"), ("ours", "rest")),
        (("ours", "grpc"), ("floor", "grpc")),
        (("ours", "rest"), ("floor", "rest")),
        (("floor", "grpc"), ("floor", "rest")),
    ],
    "peer": [(("ours", "grpc"), ("mlserver", "grpc"))],
}
FIELDS = ("rps", "p50_us", "p99_us", "server_cpu_us_per_request", "client_cpu_us_per_request")


def _select(records: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in records if all(r[k] == v for k, v in match.items())]


def summary(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Medians and ranges per run; ratios per round (runs of a round ran side by side)."""
    keys = dict.fromkeys((r["group"], r["scenario"], r["server"], r["transport"]) for r in records)
    rows = []
    for group, scenario, server, transport in keys:
        runs = _select(records, group=group, scenario=scenario, server=server, transport=transport)
        row: dict[str, Any] = {
            "group": group,
            "scenario": scenario,
            "server": server,
            "transport": transport,
            "rounds": len(runs),
        }
        for field in (*FIELDS, "server_cpu_cores", "client_cpu_cores", "other_cpu_cores"):
            values = [r[field] for r in runs]
            row[field] = statistics.median(values)
            row[field + "_range"] = [min(values), max(values)]
        rows.append(row)
    ratios = []
    for group, scenario in dict.fromkeys((r["group"], r["scenario"]) for r in records):
        for (a_server, a_transport), (b_server, b_transport) in PAIRS[group]:
            per_round: dict[str, list[float]] = {f: [] for f in FIELDS[:4]}
            above: list[float] = []
            for index in sorted({r["round"] for r in records}):
                here = _select(records, group=group, scenario=scenario, round=index)
                a = _select(here, server=a_server, transport=a_transport)
                b = _select(here, server=b_server, transport=b_transport)
                if a and b:
                    for field in per_round:
                        per_round[field].append(a[0][field] / b[0][field])
                    cpu = "server_cpu_us_per_request"
                    above.append(a[0][cpu] - b[0][cpu])
            if not above:
                continue
            ratio: dict[str, Any] = {
                "group": group,
                "scenario": scenario,
                "of": f"{a_server} {a_transport}",
                "over": f"{b_server} {b_transport}",
            }
            for field, values in (*per_round.items(), ("cpu_us_difference", above)):
                ratio[field] = statistics.median(values)
                ratio[field + "_range"] = [min(values), max(values)]
            ratios.append(ratio)
    return {"rows": rows, "ratios": ratios}


def _span(row: dict[str, Any], field: str, scale: float = 1.0, digits: int = 1) -> str:
    low, high = row[field + "_range"]
    return f"{row[field] / scale:.{digits}f} ({low / scale:.{digits}f}-{high / scale:.{digits}f})"


def report(result: dict[str, list[dict[str, Any]]]) -> str:
    headers = [
        "group", "scenario", "server", "transport", "req/s", "p50 ms", "p99 ms",
        "server CPU µs/req", "client CPU µs/req", "server cores", "client cores",
    ]  # fmt: skip
    cells = [
        [
            r["group"],
            r["scenario"],
            r["server"],
            r["transport"],
            _span(r, "rps"),
            _span(r, "p50_us", 1e3, 2),
            f"{r['p99_us'] / 1e3:.2f}",
            _span(r, "server_cpu_us_per_request", 1, 0),
            f"{r['client_cpu_us_per_request']:.0f}",
            f"{r['server_cpu_cores']:.2f}",
            f"{r['client_cpu_cores']:.2f}",
        ]
        for r in result["rows"]
    ]
    lines = [table(headers, cells), ""]
    headers = [
        "group", "scenario", "ratio", "req/s", "p50 time", "p99 time", "server CPU per request",
        "server CPU µs/req, difference",
    ]  # fmt: skip
    cells = [
        [
            r["group"],
            r["scenario"],
            f"{r['of']} / {r['over']}",
            _span(r, "rps", digits=2),
            _span(r, "p50_us", digits=2),
            _span(r, "p99_us", digits=2),
            _span(r, "server_cpu_us_per_request", digits=2),
            _span(r, "cpu_us_difference", digits=0),
        ]
        for r in result["ratios"]
    ]
    lines.append(table(headers, cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["client"]:
        client_main(argv[1:])
        return
    if argv[:1] == ["floor"]:
        floor_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each server per scenario")
    parser.add_argument("--groups", default="rest,peer", help="rest (gRPC vs REST), peer")
    parser.add_argument("--no-wrk", action="store_true", help="without wrk's REST reference")
    parser.add_argument("--no-floors", action="store_true", help="without the echo servers")
    parser.add_argument(
        "--compute-threads", type=int, default=1, help="SCORER_COMPUTE_THREADS for ours"
    )
    parser.add_argument("--limit", type=int, default=1800, help="seconds for the whole run")
    parser.add_argument("--name", default="rpc", help="results file name")
    args = parser.parse_args(argv)
    groups = args.groups.split(",")

    # SIGINT, SIGTERM and the run's time limit unwind, stopping the servers on the way out.
    def expired(*_: Any) -> None:
        raise TimeoutError(f"bench.rpc: over --limit {args.limit} s")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(args.limit)
    log = Path(tempfile.gettempdir()) / "bench-rpc-servers.log"
    records, notes = run_all(
        groups,
        args.rounds,
        args.duration,
        args.compute_threads,
        not args.no_wrk,
        not args.no_floors,
        log,
    )
    signal.alarm(0)
    result = summary(records)
    print(report(result))
    about: dict[str, Any] = {**machine(), "compute_threads": args.compute_threads}
    if "peer" in groups:
        about["mlserver"] = mlserver_version()
    payload = {"machine": about, "checks": notes, **result, "records": records}
    path = write_results(args.name, payload)
    print(f"\nwritten: {path}; server logs: {log}", file=sys.stderr)


if __name__ == "__main__":
    main()
