"""The scoring lane answers exactly as the router would, below any root path."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import create_app
from app.api.scoring import ScoringLane
from app.settings import Settings

GOOD = {"logits": [[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]], "labels": [2, 0]}
INFER = "/v2/models/cross-entropy/infer"
V2 = {
    "inputs": [
        {"name": "logits", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 0.5, 0.1, -1]},
        {"name": "labels", "shape": [2], "datatype": "INT64", "data": [2, 0]},
    ]
}
REQUESTS = [
    pytest.param("/v1/cross-entropy", GOOD, "application/json", id="ok"),
    pytest.param("/v1/softmax", {"logits": [[1.0, 2.0]]}, "application/msgpack", id="ok-msgpack"),
    pytest.param("/v1/cross-entropy", {**GOOD, "labels": [2, 3]}, "application/json", id="422"),
    pytest.param("/v1/cross-entropy", {**GOOD, "reduction": "x"}, "application/json", id="options"),
    pytest.param("/v1/binary-cross-entropy", b"{", "application/json", id="400"),
    pytest.param("/v1/softmax", GOOD, "text/plain", id="415"),
    pytest.param(INFER, V2, "application/json", id="v2-ok"),
    pytest.param(
        "/v2/models/cross-entropy/versions/1/infer", V2, "application/json", id="v2-version"
    ),
    pytest.param(INFER, {"inputs": [V2["inputs"][0]]}, "application/json", id="v2-422"),
    pytest.param(INFER, b"[", "application/json", id="v2-400"),
    pytest.param("/v2/models/nope/infer", V2, "application/json", id="v2-unknown-model"),
    pytest.param("/v2/models/softmax/versions/2/infer", V2, "application/json", id="v2-404"),
    pytest.param("/v2/models/softmax/x/infer", V2, "application/json", id="v2-no-route"),
]


def _without_lane() -> FastAPI:
    app = create_app(Settings())
    kept = [m for m in app.user_middleware if m.cls is not ScoringLane]
    assert len(kept) == len(app.user_middleware) - 1
    app.user_middleware = kept
    return app


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(create_app(Settings())) as lane, TestClient(_without_lane()) as router:
        yield lane, router


def _send(client: TestClient, path: str, body: Any, media: str) -> Any:
    if isinstance(body, bytes):
        content = body
    elif media.endswith("msgpack"):
        content = msgspec.msgpack.encode(body)
    else:
        content = msgspec.json.encode(body)
    return client.post(path, content=content, headers={"content-type": media})


@pytest.mark.parametrize(("path", "body", "media"), REQUESTS)
def test_the_lane_answers_as_the_router_does(
    clients: tuple[TestClient, TestClient], path: str, body: Any, media: str
) -> None:
    lane, router = clients
    ours, theirs = _send(lane, path, body, media), _send(router, path, body, media)
    assert ours.status_code == theirs.status_code
    assert ours.content == theirs.content
    ours.headers.pop("x-request-id")
    theirs.headers.pop("x-request-id")
    assert ours.headers == theirs.headers


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/v1/cross-entropy", "/v1/cross-entropy"),
        (INFER, "/v2/models/{name}/infer"),
        ("/v2/models/cross-entropy/versions/1/infer", "/v2/models/{name}/versions/{version}/infer"),
    ],
)
def test_the_lane_labels_metrics_with_the_route(
    clients: tuple[TestClient, TestClient], path: str, route: str
) -> None:
    lane, _ = clients
    _send(lane, path, V2 if path.startswith("/v2") else GOOD, "application/json")
    scrape = lane.get("/metrics").text
    assert f'scorer_requests_total{{encoding="json",route="{route}",status="200"}}' in scrape


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_scoring_below_a_root_path(prefix: str) -> None:
    with TestClient(create_app(Settings()), root_path="/api") as client:
        response = client.post(f"{prefix}/v1/cross-entropy", json=GOOD)
    assert response.status_code == 200
    assert response.json()["per_sample"][0] == pytest.approx(0.40760596444438, rel=1e-12)


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_inference_below_a_root_path(prefix: str) -> None:
    with TestClient(create_app(Settings()), root_path="/api") as client:
        response = client.post(f"{prefix}{INFER}", json=V2)
    assert response.status_code == 200
    [loss] = [out for out in response.json()["outputs"] if out["name"] == "loss"]
    second = math.log(math.exp(0.5) + math.exp(0.1) + math.exp(-1.0)) - 0.5
    assert loss["data"][0] == pytest.approx((0.40760596444438 + second) / 2, rel=1e-6)  # float32
