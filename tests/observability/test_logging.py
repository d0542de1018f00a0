"""One JSON line per request from a live uvicorn: request id, route, status, sizes, timings."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live_server import LiveServer, live_server

KEY = "sk-test-7f3a9c2e-do-not-log"
SECRET_LABEL = "payload-marker-31337"
GOOD = {"logits": [[1.0, 2.0, 3.0], [7.654321, 0.1, -1.0]], "labels": [2, 0]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("logs"), {"SCORER_API_KEYS": KEY}) as live:
        yield live


@pytest.fixture(scope="module")
def lines(server: LiveServer) -> list[dict[str, Any]]:
    auth = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server.url, timeout=30, headers=auth) as http:
        ok = http.post("/v1/cross-entropy", json=GOOD, headers={"x-request-id": "trace-abc-123"})
        assert ok.headers["x-request-id"] == "trace-abc-123"
        minted = http.post("/v1/softmax", json={"logits": [[1.0, 2.0]]})
        assert len(minted.headers["x-request-id"]) == 32
        bad = http.post("/v1/cross-entropy", json={**GOOD, "reduction": SECRET_LABEL})
        assert bad.status_code == 422
        for path in ("/healthz", "/readyz", "/metrics"):
            assert http.get(path).status_code == 200
        wrong = http.post(
            "/v1/cross-entropy", json=GOOD, headers={"authorization": "Bearer wrong-key"}
        )
        assert wrong.status_code == 403
        long_id = http.post(
            "/v1/softmax", json={"logits": [[1.0]]}, headers={"x-request-id": "x" * 500}
        )
        assert long_id.headers["x-request-id"] != "x" * 500
        anonymous = httpx.post(f"{server.url}/v1/softmax", json={"logits": [[1.0]]})
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
    time.sleep(0.2)
    return [json.loads(line) for line in server.log_lines()]


def _access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "app.access"]


def test_every_line_is_json_with_a_level_and_time(lines: list[dict[str, Any]]) -> None:
    assert lines
    for line in lines:
        assert {"ts", "level", "logger", "message"} <= line.keys()


def test_one_line_per_request_and_none_for_probes(lines: list[dict[str, Any]]) -> None:
    access = _access(lines)
    assert [line["route"] for line in access] == [
        "/v1/cross-entropy",
        "/v1/softmax",
        "/v1/cross-entropy",
        "/v1/cross-entropy",
        "/v1/softmax",
        "/v1/softmax",
    ]


def test_the_line_carries_id_route_status_sizes_and_timings(lines: list[dict[str, Any]]) -> None:
    line = _access(lines)[0]
    assert line["request_id"] == "trace-abc-123"
    assert line["method"] == "POST"
    assert line["status"] == 200
    assert line["encoding"] == "json"
    assert line["request_bytes"] > 0
    assert line["response_bytes"] > 0
    assert (line["samples"], line["classes"]) == (2, 3)
    for timing in ("duration_ms", "decode_ms", "compute_ms", "encode_ms"):
        assert line[timing] >= 0
    assert line["duration_ms"] >= line["decode_ms"] + line["compute_ms"] + line["encode_ms"]
    assert line["error"] is None


def test_errors_are_logged_by_type(lines: list[dict[str, Any]]) -> None:
    access = _access(lines)
    assert (access[2]["status"], access[2]["error"]) == (422, "literal_error")
    assert (access[3]["status"], access[3]["error"]) == (403, "forbidden")
    assert (access[5]["status"], access[5]["error"]) == (401, "unauthorized")


def test_no_payload_and_no_key_in_the_logs(server: LiveServer, lines: list[dict[str, Any]]) -> None:
    text = server.stdout.read_text() + server.stderr.read_text()
    assert KEY not in text
    assert "wrong-key" not in text
    assert SECRET_LABEL not in text
    assert "7.654321" not in text  # no logits


def test_request_ids_are_minted_when_absent_or_unusable(lines: list[dict[str, Any]]) -> None:
    access = _access(lines)
    assert len(access[1]["request_id"]) == 32
    assert access[4]["request_id"] != "x" * 500


def _logged(server: LiveServer, request_id: str) -> list[dict[str, Any]]:
    """The access lines of one request, once it is logged (within 10 s)."""
    deadline = time.monotonic() + 10
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
        logged = [json.loads(line) for line in server.log_lines()]
        found = [line for line in _access(logged) if line["request_id"] == request_id]
    return found


@pytest.mark.parametrize(
    "path", ["/v1/cross-entropy", "/v2/models/cross-entropy/infer"], ids=["v1", "v2"]
)
def test_a_client_gone_mid_body_is_logged_as_499_without_a_traceback(
    server: LiveServer, lines: list[dict[str, Any]], path: str
) -> None:
    # `lines` first: the module's other tests read the log as it was before this request.
    host, port = server.url.removeprefix("http://").split(":")
    request_id = f"gone-499-{path.split('/')[1]}"
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {KEY}\r\nX-Request-ID: {request_id}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"logits": [[1.0, 2.0' + b" " * 1000)
        time.sleep(0.3)  # the route is waiting for the rest of the body
    gone = _logged(server, request_id)
    assert [(line["status"], line["error"]) for line in gone] == [(499, "client_disconnected")]
    assert gone[0]["request_bytes"] == 100000  # as declared; the body never arrived whole
    logs = server.stdout.read_text() + server.stderr.read_text()
    assert "Traceback" not in logs
    assert "ClientDisconnect" not in logs
    assert server.alive()


def test_v2_requests_are_logged_with_their_shape_and_error_type(
    server: LiveServer, lines: list[dict[str, Any]]
) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    ok = {
        "inputs": [
            {"name": "logits", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]},
            {"name": "labels", "shape": [2], "datatype": "INT64", "data": [2, 0]},
        ]
    }
    bad = {"inputs": [{**ok["inputs"][0]}, {**ok["inputs"][1], "data": [2, 3]}]}
    with httpx.Client(base_url=server.url, timeout=30, headers=auth) as http:
        for request_id, body, status in (("v2-ok", ok, 200), ("v2-bad", bad, 422)):
            response = http.post(
                "/v2/models/cross-entropy/infer", json=body, headers={"x-request-id": request_id}
            )
            assert response.status_code == status, response.text
    [good] = _logged(server, "v2-ok")
    assert (good["samples"], good["classes"], good["error"]) == (2, 3, None)
    assert good["compute_ms"] >= 0
    [refused] = _logged(server, "v2-bad")
    assert (refused["status"], refused["error"]) == (422, "invalid_label")
