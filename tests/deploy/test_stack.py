"""The image and the compose deployment: hardening, health, limits, and load scenarios."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.deploy.conftest import ROOT, Stack

pytestmark = pytest.mark.deploy


def _inspect(stack: Stack, service: str) -> list[dict[str, Any]]:
    ids = stack.compose("ps", "--quiet", service).stdout.split()
    assert ids, f"no {service} containers"
    done = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, timeout=60, check=True
    )
    return list(json.loads(done.stdout))


def _load(stack: Stack, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run ``python -m load.run`` against the stack; fail with its table when it fails."""
    out = tmp_path / "load.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "load.run",
            *args,
            "--base-url",
            stack.base_url,
            "--project",
            stack.project,
            "--json-out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"load.run {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_api_runs_as_non_root_on_a_read_only_root(stack: Stack) -> None:
    for container in _inspect(stack, "api"):
        assert container["Config"]["User"] not in ("", "root", "0", "0:0")
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert container["HostConfig"]["Memory"] > 0
        assert container["HostConfig"]["NanoCpus"] > 0
        env = dict(item.split("=", 1) for item in container["Config"]["Env"])
        assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"
        assert env["MKL_NUM_THREADS"] == "1"
    uid = stack.compose("exec", "-T", "api", "id", "-u").stdout.strip()
    assert uid not in ("", "0")
    write = stack.compose("exec", "-T", "api", "touch", "/opt/venv/written")
    assert write.returncode != 0, "the root filesystem is writable"


def test_replicas_are_healthy_and_only_loopback_is_published(stack: Stack) -> None:
    replicas = _inspect(stack, "api")
    assert len(replicas) >= 2
    assert all(c["State"]["Health"]["Status"] == "healthy" for c in replicas)
    (lb,) = _inspect(stack, "lb")
    bindings = [b for ports in lb["NetworkSettings"]["Ports"].values() for b in ports or []]
    assert bindings, "the load balancer publishes nothing"
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}
    assert not any(c["NetworkSettings"]["Ports"].get("8000/tcp") for c in replicas)
    assert not any(c["NetworkSettings"]["Ports"].get("8001/tcp") for c in replicas)


def test_tritonclient_grpc_scores_through_the_load_balancer(stack: Stack) -> None:
    """gRPC through nginx to the replicas: health, metadata, and REST's results."""
    tg = pytest.importorskip("tritonclient.grpc")
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (256, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 256)
    client = tg.InferenceServerClient(stack.grpc_address)
    try:
        assert client.is_server_ready()
        assert client.get_model_metadata("cross-entropy").name == "cross-entropy"
        inputs = [
            tg.InferInput("logits", [256, 10], "FP32"),
            tg.InferInput("labels", [256], "INT64"),
        ]
        inputs[0].set_data_from_numpy(logits)
        inputs[1].set_data_from_numpy(labels.astype(np.int64))
        wanted = [tg.InferRequestedOutput(name) for name in ("loss", "per_sample", "probs")]
        results = [client.infer("cross-entropy", inputs, outputs=wanted) for _ in range(6)]
    finally:
        client.close()
    header = {
        "inputs": [
            {
                "name": "logits",
                "shape": [256, 10],
                "datatype": "FP32",
                "data": logits.ravel().tolist(),
            },
            {"name": "labels", "shape": [256], "datatype": "INT64", "data": labels.tolist()},
        ],
        "outputs": [{"name": name} for name in ("loss", "per_sample", "probs")],
    }
    with httpx.Client(base_url=stack.base_url, timeout=30, trust_env=False) as rest:
        response = rest.post("/v2/models/cross-entropy/infer", json=header)
    assert response.status_code == 200, response.text
    dtypes = {"FP32": np.float32, "FP64": np.float64}
    expected = {
        out["name"]: np.array(out["data"], dtypes[out["datatype"]]).reshape(out["shape"])
        for out in response.json()["outputs"]
    }
    for result in results:  # each a replica's (nginx spreads the calls): all equal REST's
        for name, values in expected.items():
            np.testing.assert_array_equal(result.as_numpy(name), values, strict=True)
    import grpc

    with grpc.insecure_channel(stack.grpc_address) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert check.status == health_pb2.HealthCheckResponse.SERVING


def test_health_readiness_and_metrics_through_the_load_balancer(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=10, trust_env=False) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").status_code == 200
        # Multiprocess metrics write to PROMETHEUS_MULTIPROC_DIR on the read-only root.
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "# HELP" in metrics.text


def test_the_report_is_drawn_on_the_read_only_image(stack: Stack) -> None:
    # matplotlib ships in the image; with no home and a read-only root it caches its fonts
    # in MPLCONFIGDIR on the /tmp tmpfs. Every replica draws one (the balancer alternates).
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, size=200)
    logits = 2.0 * rng.normal(size=(200, 4)) + 2.0 * np.eye(4)[labels]
    body = {"logits": logits.tolist(), "labels": labels.tolist()}
    with httpx.Client(base_url=stack.base_url, timeout=60, trust_env=False) as client:
        for _ in range(4):
            response = client.post("/v1/report", json=body)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            page = response.text
            for figure in ("reliability", "confidence", "loss", "per-class"):
                drawn = re.search(rf'<figure id="{figure}">(.*?)</figure>', page, re.S)
                assert drawn is not None, figure
                assert "<svg" in drawn.group(1), figure
                assert "<path" in drawn.group(1), figure
    for container in _inspect(stack, "api"):
        logs = subprocess.run(
            ["docker", "logs", container["Id"]], capture_output=True, text=True, timeout=60
        )
        assert "Matplotlib" not in logs.stderr, logs.stderr[-2000:]


def test_body_over_64_mib_is_refused_before_it_is_sent(stack: Stack) -> None:
    url = urlsplit(stack.base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.putrequest("POST", "/v1/cross-entropy")
        connection.putheader("Content-Type", "application/msgpack")
        connection.putheader("Content-Length", str(64 * 2**20 + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert response.getheader("content-type") == "application/problem+json"
        assert json.loads(response.read())["errors"][0]["type"] == "body_too_large"
    finally:
        connection.close()


def test_steady_load_every_payload_kind(stack: Stack, tmp_path: Path) -> None:
    result = _load(stack, tmp_path, "steady", "--duration", "3")
    (steady,) = result["scenarios"]
    kinds = {row["payload"] for row in steady["rows"]}
    assert {"small-json", "small-msgpack", "medium-json", "medium-b64", "large"} <= kinds
    assert all(row["ok"] > 0 and row["errors"] == row["wrong"] == 0 for row in steady["rows"])


def test_losing_a_replica_fails_no_request(stack: Stack, tmp_path: Path) -> None:
    result = _load(stack, tmp_path, "replica-loss", "--duration", "15")
    (loss,) = result["scenarios"]
    assert loss["passed"]
    assert loss["notes"]["served_by_revived_replica"] > 0


def test_draining_replica_completes_requests_in_flight(stack: Stack, tmp_path: Path) -> None:
    result = _load(stack, tmp_path, "drain", "--duration", "12")
    (drain,) = result["scenarios"]
    assert drain["passed"]
    assert drain["notes"]["completed_by_draining_replica"] > 0


_PROBE = """
import http.client, json, time
def listening():  # sockets listening on :8000 (1F40); the parent's reserved one is not
    rows = open("/proc/net/tcp").read().splitlines()[1:]
    return sum(1 for r in rows if r.split()[1].endswith(":1F40") and r.split()[3] == "0A")
deadline = time.monotonic() + 60
while listening() < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=10)
conn.request("POST", "/v1/cross-entropy", '{"logits": [[1, 2, 3]], "labels": [2]}',
             {"Content-Type": "application/json"})
print(json.dumps({"listening": listening(), "loss": json.loads(conn.getresponse().read())["loss"]}))
"""


def test_the_image_with_two_workers_gives_each_a_socket_and_stops_cleanly(stack: Stack) -> None:
    # The image's command is app.serve; the stack runs one worker per replica.
    image = f"{stack.project}-api"
    started = subprocess.run(
        ["docker", "run", "--detach", "--env", "WEB_CONCURRENCY=2", image],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    container = started.stdout.strip()
    try:
        probe = subprocess.run(
            ["docker", "exec", container, "python", "-c", _PROBE],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr
        answer = json.loads(probe.stdout)
        assert answer["listening"] == 2
        assert abs(answer["loss"] - 0.40760596) < 1e-7
        stop = subprocess.run(["docker", "stop", container], capture_output=True, timeout=60)
        assert stop.returncode == 0
        state = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.ExitCode}}", container],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert state.stdout.strip() == "0"  # SIGTERM: both workers shut down gracefully
    finally:
        subprocess.run(["docker", "rm", "--force", container], capture_output=True, timeout=60)
