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


def test_a_client_gone_mid_body_is_logged_as_499_without_a_traceback(
    server: LiveServer, lines: list[dict[str, Any]]
) -> None:
    # `lines` first: the module's other tests read the log as it was before this request.
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        "POST /v1/cross-entropy HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {KEY}\r\nX-Request-ID: gone-499\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"logits": [[1.0, 2.0' + b" " * 1000)
        time.sleep(0.3)  # the route is waiting for the rest of the body
    deadline = time.monotonic() + 10
    gone: list[dict[str, Any]] = []
    while not gone and time.monotonic() < deadline:
        time.sleep(0.1)
        logged = [json.loads(line) for line in server.log_lines()]
        gone = [line for line in _access(logged) if line["request_id"] == "gone-499"]
    assert [(line["status"], line["error"]) for line in gone] == [(499, "client_disconnected")]
    assert gone[0]["request_bytes"] == 100000  # as declared; the body never arrived whole
    logs = server.stdout.read_text() + server.stderr.read_text()
    assert "Traceback" not in logs
    assert "ClientDisconnect" not in logs
    assert server.alive()
