"""The gRPC server beside REST: keys, health, draining, load, deadlines, metrics, serve."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from app.api.grpc.server import GrpcServer
from tests.api.grpc.wire import Served, infer_request, outputs, served, service_pb2, tg
from tests.live_server import free_port, live_server

INPUTS = {"logits": np.array([[1.0, 2.0, 3.0]], np.float32), "labels": np.array([2])}
SERVICE = "inference.GRPCInferenceService"


def _infer(server: Served, metadata: Any = None, timeout: float | None = None) -> Any:
    request = infer_request("cross-entropy", INPUTS, outputs=["loss"])
    return server.stub.ModelInfer(request, metadata=metadata, timeout=timeout)


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def _health(server: Served, service: str = "") -> Any:
    stub = health_pb2_grpc.HealthStub(server.channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service)).status


@pytest.fixture(scope="module")
def keyed() -> Iterator[Served]:
    with served(api_keys=["k1", "k2"]) as live:
        yield live


def test_a_call_without_a_key_is_unauthenticated(keyed: Served) -> None:
    code, message = _code(lambda: _infer(keyed))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    rest = keyed.rest.post("/v2/models/cross-entropy/infer", content=b"{}")
    assert rest.status_code == 401
    assert rest.json() == {"error": message}
    code, _ = _code(lambda: _infer(keyed, [("authorization", "Basic k1")]))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_wrong_key_is_permission_denied(keyed: Served) -> None:
    code, message = _code(lambda: _infer(keyed, [("authorization", "Bearer nope")]))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message == "the API key is not valid"
    code, _ = _code(
        lambda: keyed.stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="softmax"))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_key_in_metadata_is_taken_from_tritonclient(keyed: Served) -> None:
    client = keyed.triton()
    headers = {"authorization": "Bearer k2"}
    item = tg.InferInput("logits", [1, 3], "FP32")
    item.set_data_from_numpy(INPUTS["logits"])
    result = client.infer("softmax", [item], headers=headers)
    assert result.as_numpy("probs").shape == (1, 3)
    assert client.get_model_metadata("softmax", headers=headers).name == "softmax"
    client.close()


def test_probes_need_no_key(keyed: Served) -> None:
    assert keyed.stub.ServerLive(service_pb2.ServerLiveRequest()).live
    assert keyed.stub.ServerReady(service_pb2.ServerReadyRequest()).ready
    assert _health(keyed) == health_pb2.HealthCheckResponse.SERVING


def test_health_follows_readiness_and_draining_refuses_inference() -> None:
    with served() as live:
        assert _health(live) == health_pb2.HealthCheckResponse.SERVING
        assert _health(live, SERVICE) == health_pb2.HealthCheckResponse.SERVING
        code, _ = _code(lambda: _health(live, "no.such.Service"))
        assert code == grpc.StatusCode.NOT_FOUND
        live.rest.app.state.readiness.draining = True  # type: ignore[attr-defined]
        assert _health(live) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not live.stub.ServerReady(service_pb2.ServerReadyRequest()).ready
        assert live.rest.get("/v2/health/ready").status_code == 503
        code, message = _code(lambda: _infer(live))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in message


def test_a_worker_with_no_free_slot_is_unavailable() -> None:
    with served(max_in_flight=1) as live:
        capacity = live.rest.app.state.capacity  # type: ignore[attr-defined]
        capacity.working = 1  # a request holds the only slot
        try:
            code, message = _code(lambda: _infer(live))
            rest = live.rest.post("/v2/models/softmax/infer", content=b"{}")
        finally:
            capacity.working = 0
        assert code == grpc.StatusCode.UNAVAILABLE
        assert rest.status_code == 503
        assert rest.json() == {"error": message}
        assert outputs(_infer(live))["loss"].shape == (1,)


def _slow_compute(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    from app.api.v2 import models

    compute = models.Model.compute

    def slow(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return compute(self, *args, **kwargs)

    monkeypatch.setattr(models.Model, "compute", slow)


def test_the_request_timeout_is_deadline_exceeded(monkeypatch: pytest.MonkeyPatch) -> None:
    _slow_compute(monkeypatch, 0.3)
    with served(request_timeout_seconds=0.1, inline_body_bytes=0) as live:
        code, message = _code(lambda: _infer(live))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert message == "the request did not complete within 0.1 s"


def test_the_client_deadline_bounds_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    _slow_compute(monkeypatch, 0.5)
    with served(inline_body_bytes=0) as live:
        began = time.monotonic()
        code, _ = _code(lambda: _infer(live, timeout=0.1))
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - began < 0.4
        time.sleep(0.5)  # the abandoned thread finishes; the slot is free again
        assert outputs(_infer(live, timeout=5))["loss"].shape == (1,)


def test_calls_are_counted_logged_and_carry_the_request_id() -> None:
    with served() as live:
        lines: list[dict[str, Any]] = []
        service = live.rest.app.state.grpc.service  # type: ignore[attr-defined]
        service.access_log.write = lines.append
        request = infer_request("cross-entropy", INPUTS, outputs=["loss"])
        _, call = live.stub.ModelInfer.with_call(request, metadata=[("x-request-id", "trace-7")])
        assert ("x-request-id", "trace-7") in call.trailing_metadata()
        _code(lambda: live.stub.ModelInfer(infer_request("nope", INPUTS)))
        live.stub.ServerLive(service_pb2.ServerLiveRequest())
        metrics = live.rest.get("/metrics").text
    route = f'route="/{SERVICE}/ModelInfer"'
    assert f'scorer_requests_total{{encoding="protobuf",{route},status="200"}}' in metrics
    assert f'scorer_requests_total{{encoding="protobuf",{route},status="404"}}' in metrics
    assert f'scorer_rejections_total{{reason="not_found",{route}}}' in metrics
    assert "ServerLive" not in metrics  # probes are not counted, as /v2/health/* are not
    assert (lines[0]["request_id"], lines[0]["status"], lines[0]["error"]) == ("trace-7", 200, None)
    assert lines[0]["method"] == "gRPC"
    assert lines[0]["route"] == f"/{SERVICE}/ModelInfer"
    assert (lines[0]["samples"], lines[0]["classes"]) == (1, 3)
    assert (lines[1]["status"], lines[1]["error"]) == (404, "not_found")
    assert len(lines) == 2  # not the probe


def test_the_server_stops_with_the_app() -> None:
    with served() as live:
        grpc_server: GrpcServer = live.rest.app.state.grpc  # type: ignore[attr-defined]
        port = grpc_server.port
        assert live.stub.ServerLive(service_pb2.ServerLiveRequest()).live
    assert grpc_server.server is None
    with (
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        pytest.raises(grpc.FutureTimeoutError),
    ):
        grpc.channel_ready_future(channel).result(timeout=0.5)


def test_no_grpc_when_switched_off() -> None:
    from fastapi.testclient import TestClient

    from app.api import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(grpc=False))) as client:
        assert client.app.state.grpc is None  # type: ignore[attr-defined]


def test_serve_runs_grpc_in_every_worker_on_one_port(tmp_path: Path) -> None:
    """``python -m app.serve`` as the image runs it: both workers answer on the port."""
    port = free_port()
    env = {"SCORER_GRPC": "true", "SCORER_GRPC_PORT": str(port)}
    with live_server(tmp_path, env=env, workers=2) as server:
        client = tg.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_server_ready()
        logits = tg.InferInput("logits", [1, 3], "FP32")
        logits.set_data_from_numpy(INPUTS["logits"])
        labels = tg.InferInput("labels", [1], "INT64")
        labels.set_data_from_numpy(INPUTS["labels"].astype(np.int64))
        for _ in range(4):
            result = client.infer("cross-entropy", [logits, labels])
            np.testing.assert_allclose(result.as_numpy("loss"), [0.40760596], rtol=1e-7)
        client.close()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    assert "gRPC listening on 127.0.0.1:" in server.stdout.read_text() + server.stderr.read_text()


def test_serve_fails_at_once_when_the_grpc_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"SCORER_GRPC": "true", "SCORER_GRPC_PORT": str(port)}
        with pytest.raises(RuntimeError, match="did not start"), live_server(tmp_path, env=env):
            pass


def test_the_first_of_repeated_keys_counts_as_over_rest(keyed: Served) -> None:
    metadata = [("authorization", "Bearer k1"), ("authorization", "Bearer nope")]
    assert outputs(_infer(keyed, metadata))["loss"].shape == (1,)
    code, _ = _code(lambda: _infer(keyed, list(reversed(metadata))))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_a_cancelled_call_is_counted_as_the_client_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    _slow_compute(monkeypatch, 0.4)
    with served(inline_body_bytes=0) as live:
        lines: list[dict[str, Any]] = []
        live.rest.app.state.grpc.service.access_log.write = lines.append  # type: ignore[attr-defined]
        request = infer_request("cross-entropy", INPUTS, outputs=["loss"])
        future = live.stub.ModelInfer.future(request)
        time.sleep(0.1)
        assert future.cancel()
        deadline = time.monotonic() + 5
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        metrics = live.rest.get("/metrics").text
    assert [(line["status"], line["error"]) for line in lines] == [(499, "client_disconnected")]
    assert f'route="/{SERVICE}/ModelInfer",status="499"' in metrics


def test_an_ipv6_host_is_bracketed() -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    from fastapi.testclient import TestClient

    from app.api import create_app
    from app.settings import Settings

    app = create_app(Settings(grpc=True, grpc_port=0, grpc_host="::1"))
    with TestClient(app):
        client = tg.InferenceServerClient(f"[::1]:{app.state.grpc.port}")
        assert client.is_server_live()
        client.close()
