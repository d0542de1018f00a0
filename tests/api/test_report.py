"""POST /v1/report: the HTML page, the SVG diagram, aggregates as input, errors."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from tests.api.wire import decode, encode

FIGURES = ("reliability", "confidence", "loss", "per-class")


def _body(n: int = 300, c: int = 5, seed: int = 4) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    logits = 3.0 * rng.normal(size=(n, c)) + 2.0 * np.eye(c)[labels]
    return {"logits": logits.tolist(), "labels": labels.tolist()}


def _post(client: Any, body: Any, encoding: str = "json", **headers: str):
    content, media = encode(body, encoding)
    return client.post("/v1/report", content=content, headers={"content-type": media, **headers})


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_html_page_with_every_plot(client: Any, encoding: str) -> None:
    response = _post(client, _body(), encoding)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert page.startswith("<!DOCTYPE html>")
    for ident in FIGURES:
        figure = re.search(rf'<figure id="{ident}">(.*?)</figure>', page, re.S)
        assert figure is not None, ident
        assert "<svg" in figure.group(1)
    assert page.count("<svg") == len(FIGURES)
    for name in ("accuracy", "top-5 accuracy", "ECE (15 bins)", "Brier score", "loss (mean)"):
        assert f">{name}<" in page


def test_page_is_self_contained(client: Any) -> None:
    page = _post(client, _body()).text
    assert "<script" not in page
    assert "<link" not in page
    assert not re.search(r'(src|href)="(?!#)', page)


def test_headline_numbers_are_the_metrics(client: Any) -> None:
    body = _body()
    page = _post(client, body).text
    scored = client.post(
        "/v1/cross-entropy", json={**body, "metrics": {"calibration": True, "brier": True}}
    ).json()
    diag = scored["diagnostics"]
    for name, value in (
        ("loss (mean)", scored["loss"]),
        ("accuracy", diag["accuracy"]),
        ("ECE (15 bins)", diag["calibration"]["ece"]),
        ("Brier score", diag["brier"]),
    ):
        assert f'<th scope="row">{name}</th><td class="v">{value:.6g}</td>' in page


@pytest.mark.parametrize(
    "accept",
    ["image/svg+xml", "image/*", "text/html;q=0.5, image/svg+xml", "text/html;q=0, */*;q=0.1"],
)
def test_svg_reliability_diagram_alone(client: Any, accept: str) -> None:
    response = _post(client, _body(), accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")
    assert "<!-- Reliability diagram (ECE " in response.text  # the title, drawn as paths
    assert response.text.count("<svg") == 1


def test_calibration_bins_of_the_request(client: Any) -> None:
    page = _post(client, {**_body(), "metrics": {"calibration_bins": 8}}).text
    assert ">ECE (8 bins)<" in page


def test_from_merged_aggregates(client: Any) -> None:
    metrics = {"calibration": True, "per_class": True, "loss_histogram": True, "aggregate": True}
    body = _body()
    halves = [
        {"logits": body["logits"][a:b], "labels": body["labels"][a:b], "metrics": metrics}
        for a, b in ((0, 100), (100, 300))
    ]
    aggregates = [client.post("/v1/cross-entropy", json=h).json()["aggregate"] for h in halves]
    page = _post(client, {"aggregates": aggregates}).text
    assert page.count("<svg") == len(FIGURES)
    assert '<td class="v">300</td>' in page


def test_aggregates_without_some_parts(client: Any) -> None:
    body = {**_body(), "metrics": {"aggregate": True}}
    aggregate = client.post("/v1/cross-entropy", json=body).json()["aggregate"]
    page = _post(client, {"aggregates": [aggregate]}).text
    assert page.count("<svg") == 0
    assert "No calibration in the aggregates." in page
    response = _post(client, {"aggregates": [aggregate]}, accept="image/svg+xml")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["aggregates"]


def test_not_acceptable(client: Any) -> None:
    response = _post(client, _body(), accept="application/json")
    assert response.status_code == 406
    assert "text/html, image/svg+xml" in response.json()["detail"]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"logits": [[1, 2]], "labels": [5]}, ["labels", 0], id="bad-label"),
        pytest.param({"logits": [[1, 2]]}, ["labels"], id="no-labels"),
        pytest.param({"logits": [[1, 2]], "labels": [0], "nope": 1}, ["nope"], id="unknown"),
        pytest.param({"aggregates": []}, ["aggregates"], id="no-aggregates"),
        pytest.param({"aggregates": [{"classes": 0}]}, ["aggregates", 0, "classes"], id="bad"),
    ],
)
def test_errors_are_problems_in_the_request_codec(
    client: Any, encoding: str, body: dict[str, Any], loc: list[Any]
) -> None:
    response = _post(client, body, encoding)
    assert response.status_code == 422
    problem = decode(response.content, response.headers["content-type"])
    assert problem["errors"][0]["loc"] == loc
    expected = "application/problem+json" if encoding == "json" else "application/msgpack"
    assert response.headers["content-type"] == expected
