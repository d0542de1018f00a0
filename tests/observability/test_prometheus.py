"""Prometheus metrics from a real two-worker uvicorn in multiprocess mode."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.wire import tensor
from tests.live_server import LiveServer, live_server

GOOD = {"logits": [[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]], "labels": [2, 0]}
ROUTE = "/v1/cross-entropy"


@pytest.fixture(scope="module")
def multiproc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, multiproc: Path) -> Iterator[LiveServer]:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "SCORER_MAX_BODY_BYTES": "100000"}
    with live_server(tmp_path_factory.mktemp("metrics"), env, workers=2) as live:
        yield live


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def traffic(server: LiveServer) -> dict:
    """Known traffic: 12 JSON and 8 msgpack scorings, 3 rejections, probes in between."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(12):
            assert http.post(ROUTE, json=GOOD).status_code == 200
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 200
        logits = np.zeros((4, 10), np.float32)
        body = msgspec.msgpack.encode(
            {"logits": tensor(logits, json_body=False), "labels": [1] * 4}
        )
        for _ in range(8):
            response = http.post(
                ROUTE, content=body, headers={"content-type": "application/msgpack"}
            )
            assert response.status_code == 200
        assert http.post(ROUTE, json={**GOOD, "labels": [7, 0]}).status_code == 422
        assert http.post(ROUTE, json={**GOOD, "pad": "x" * 200_000}).status_code == 413
        assert http.post("/v1/nowhere", json=GOOD).status_code == 404
        scrapes = [http.get("/metrics") for _ in range(6)]
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
    return {"scrapes": [_samples(s.text) for s in scrapes]}


def test_both_workers_write_to_the_multiprocess_directory(traffic: dict, multiproc: Path) -> None:
    pids = {name.rsplit("_", 1)[-1].split(".")[0] for name in os.listdir(multiproc)}
    assert len(pids) >= 2, os.listdir(multiproc)


def test_every_scrape_sees_all_workers(traffic: dict) -> None:
    # Whichever worker answers the scrape, the counts are the sum over both workers.
    for samples in traffic["scrapes"]:
        json_ok = _value(
            samples, "scorer_requests_total", route=ROUTE, status="200", encoding="json"
        )
        packed = _value(
            samples, "scorer_requests_total", route=ROUTE, status="200", encoding="msgpack"
        )
        assert (json_ok, packed) == (12, 8)


def test_rejections_by_reason(traffic: dict) -> None:
    samples = traffic["scrapes"][-1]
    assert _value(samples, "scorer_rejections_total", route=ROUTE, reason="invalid_label") == 1
    assert _value(samples, "scorer_rejections_total", route=ROUTE, reason="body_too_large") == 1
    assert _value(samples, "scorer_rejections_total", route="other", reason="not_found") == 1
    assert _value(samples, "scorer_requests_total", route=ROUTE, status="413", encoding="json") == 1


def test_histograms(traffic: dict) -> None:
    samples = traffic["scrapes"][-1]
    assert _value(samples, "scorer_request_duration_seconds_count", route=ROUTE) == 22
    assert _value(samples, "scorer_request_size_bytes_count", route=ROUTE) == 22
    assert _value(samples, "scorer_request_size_bytes_sum", route=ROUTE) > 200_000
    assert _value(samples, "scorer_response_size_bytes_count", route=ROUTE) == 22
    for stage in ("decode", "compute", "encode"):
        count = _value(samples, "scorer_stage_duration_seconds_count", route=ROUTE, stage=stage)
        assert count == (21 if stage == "decode" else 20), stage  # the 422 decoded, then failed
    # 12 requests of 2 samples x 3 classes, 8 of 4 x 10.
    assert _value(samples, "scorer_batch_samples_sum", route=ROUTE) == 12 * 2 + 8 * 4 + 2
    assert _value(samples, "scorer_batch_classes_sum", route=ROUTE) == 12 * 3 + 8 * 10 + 3


def test_in_flight_gauge_is_back_to_zero(traffic: dict) -> None:
    assert _value(traffic["scrapes"][-1], "scorer_requests_in_flight") == 0


def test_probes_and_scrapes_are_not_counted(traffic: dict) -> None:
    routes = {
        dict(labels).get("route")
        for (name, labels) in traffic["scrapes"][-1]
        if name.startswith("scorer_")
    }
    assert not routes & {"/healthz", "/readyz", "/metrics"}


def test_single_process_registry(client) -> None:
    # Without PROMETHEUS_MULTIPROC_DIR the process registry is served.
    assert client.post(ROUTE, json=GOOD).status_code == 200
    text = client.get("/metrics").text
    assert "scorer_requests_total" in text
    assert "scorer_requests_in_flight" in text
