"""The committed OpenAPI document matches the code and describes both media types."""

from __future__ import annotations

import json

import openapi_spec_validator

from app.api import create_app
from app.api.openapi import SPEC_PATH, render


def test_committed_spec_matches_code() -> None:
    assert SPEC_PATH.read_text(encoding="utf-8") == render(create_app()), (
        "openapi/openapi.json drifted: run `python -m app.api`"
    )


def test_every_body_has_both_media_types() -> None:
    spec = json.loads(render(create_app()))
    posts = {path: op["post"] for path, op in spec["paths"].items() if "post" in op}
    posts = {path: op for path, op in posts.items() if path < "/v2"}
    assert len(posts) == 5
    for path, op in posts.items():
        assert set(op["requestBody"]["content"]) == {"application/json", "application/msgpack"}
        if path == "/v1/report":  # answers HTML or SVG, checked below
            continue
        assert set(op["responses"]["200"]["content"]) == {
            "application/json",
            "application/msgpack",
        }
        assert "application/problem+json" in op["responses"]["422"]["content"]
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"crossEntropy", "binaryCrossEntropy", "softmax", "healthz", "readyz"} <= ids
    for ref in ("CrossEntropyRequest", "LossResponse", "Problem", "TensorPayload"):
        assert ref in spec["components"]["schemas"]


def test_open_inference_protocol_routes() -> None:
    spec = json.loads(render(create_app()))
    infer = [op["post"] for path, op in spec["paths"].items() if "post" in op and path >= "/v2"]
    assert [op["operationId"] for op in infer] == ["modelInfer", "modelVersionInfer"]
    for op in infer:
        assert set(op["requestBody"]["content"]) == {"application/json"}
        assert set(op["responses"]["200"]["content"]) == {
            "application/json",
            "application/octet-stream",
        }
        headers = [p["name"] for p in op["parameters"] if p["in"] == "header"]
        assert headers == ["Inference-Header-Content-Length"]
        assert "InferenceError" in json.dumps(op["responses"]["422"])
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {"serverMetadata", "serverLive", "serverReady", "modelMetadata"} <= ids
    assert {"modelReady", "modelConfig"} <= ids


def test_committed_spec_is_valid_openapi() -> None:
    openapi_spec_validator.validate(json.loads(SPEC_PATH.read_text(encoding="utf-8")))


def test_metrics_routes() -> None:
    spec = json.loads(render(create_app()))
    merge = spec["paths"]["/v1/aggregates/merge"]["post"]
    assert merge["operationId"] == "mergeAggregates"
    report = spec["paths"]["/v1/report"]["post"]
    assert set(report["responses"]["200"]["content"]) == {"text/html", "image/svg+xml"}
    assert "501" not in report["responses"]
    for ref in ("MergeRequest", "DatasetMetrics", "AggregateModel", "MetricsOptions"):
        assert ref in spec["components"]["schemas"]


def test_every_request_body_has_an_example_that_scores() -> None:
    from fastapi.testclient import TestClient

    app = create_app()
    spec = json.loads(render(app))
    bodies = 0
    with TestClient(app) as client:
        for path, item in spec["paths"].items():
            for method, op in item.items():
                if "requestBody" not in op:
                    continue
                for media, content in op["requestBody"]["content"].items():
                    named = content.get("examples", {})
                    examples = [content["example"]] if "example" in content else []
                    examples += [example["value"] for example in named.values()]
                    assert examples, f"{method} {path} {media}: no example"
                    for example in examples:
                        concrete = path.replace("{name}", "cross-entropy").replace("{version}", "1")
                        response = client.post(concrete, json=example)
                        assert response.status_code == 200, (path, response.text)
                        bodies += 1
    assert bodies >= 14  # 5 /v1 routes in two media types (the report's two), 2 /v2


def test_the_bearer_scheme_is_declared_and_optional() -> None:
    spec = json.loads(render(create_app()))
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearer": []}, {}]


def test_schema_names_are_public() -> None:
    names = json.loads(render(create_app()))["components"]["schemas"]
    assert not [name for name in names if name.startswith("_") or "__" in name]
