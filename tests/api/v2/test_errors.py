"""Every error of the inference route is {"error": "..."} with the status of the error table."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import Settings
from tests.api.v2.wire import request

LOGITS = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
LABELS = np.array([2, 0])


def _header(**changes: Any) -> dict[str, Any]:
    body, _ = request({"logits": LOGITS, "labels": LABELS})
    header = json.loads(body)
    header.update(changes)
    return header


def _input(index: int, **changes: Any) -> dict[str, Any]:
    header = _header()
    header["inputs"][index].update(changes)
    return header


CASES = [
    pytest.param(b"{not json", {}, 400, "not JSON", id="not-json"),
    pytest.param(b"[1, 2]", {}, 400, "invalid inference request", id="not-an-object"),
    pytest.param(json.dumps({"inputs": 3}).encode(), {}, 400, "inputs", id="inputs-not-list"),
    pytest.param(
        json.dumps(_header(extra=1)).encode(), {}, 400, "unknown field", id="unknown-field"
    ),
    pytest.param(
        json.dumps(_header()).encode(),
        {"inference-header-content-length": "999999"},
        400,
        "Inference-Header-Content-Length",
        id="header-length-too-large",
    ),
    pytest.param(
        json.dumps(_header()).encode(),
        {"inference-header-content-length": "-3"},
        400,
        "Inference-Header-Content-Length",
        id="header-length-negative",
    ),
    pytest.param(
        json.dumps(_input(0, data=None, parameters={"binary_data_size": 48})).encode(),
        {},
        400,
        "binary_data_size",
        id="binary-missing",
    ),
    pytest.param(
        json.dumps(_header()).encode() + b"junk",
        {"inference-header-content-length": str(len(json.dumps(_header())))},
        400,
        "unaccounted",
        id="trailing-bytes",
    ),
    pytest.param(
        json.dumps(_input(0, datatype="BYTES")).encode(),
        {},
        422,
        "unsupported datatype",
        id="bytes",
    ),
    pytest.param(
        json.dumps(_input(0, datatype="BOOL")).encode(), {}, 422, "unsupported datatype", id="bool"
    ),
    pytest.param(
        json.dumps(_input(0, shape=[3, 3])).encode(), {}, 422, "needs 9 values", id="shape"
    ),
    pytest.param(json.dumps(_input(0, name="oops")).encode(), {}, 422, "unknown input", id="input"),
    pytest.param(
        json.dumps(_header(inputs=_header()["inputs"] * 2)).encode(),
        {},
        422,
        "given twice",
        id="duplicate-input",
    ),
    pytest.param(
        json.dumps(_input(1, data=[2.5, 0])).encode(), {}, 422, "must be integers", id="int-data"
    ),
    pytest.param(
        json.dumps(_input(1, datatype="INT32", data=[2**40, 0])).encode(),
        {},
        422,
        "INT32 range",
        id="int32-range",
    ),
    pytest.param(
        json.dumps(_input(0, data=[1, 2, "x", 4, 5, 6])).encode(),
        {},
        422,
        "logits[2]",
        id="bad-element",
    ),
    pytest.param(
        json.dumps(_input(1, data=[3, 0])).encode(),
        {},
        422,
        "labels must be integers in [0, 3)",
        id="label-range",
    ),
    pytest.param(
        json.dumps(_input(0, data=[1, "nan", 3, 1, 1, 1])).encode(),
        {},
        422,
        "got nan at [0, 1]",
        id="nan-logit",
    ),
    pytest.param(
        json.dumps(_header(inputs=_header()["inputs"][:1])).encode(),
        {},
        422,
        "labels is required",
        id="no-labels",
    ),
    pytest.param(
        json.dumps(_header(outputs=[{"name": "nope"}])).encode(),
        {},
        422,
        "unknown output",
        id="output",
    ),
    pytest.param(
        json.dumps(_header(parameters={"outputs": ["probs"]})).encode(),
        {},
        422,
        "unknown parameter 'outputs'",
        id="reserved-parameter",
    ),
    pytest.param(
        json.dumps(_header(parameters={"reduction": "avg"})).encode(),
        {},
        422,
        "parameters.reduction",
        id="bad-reduction",
    ),
    pytest.param(
        json.dumps(_header(parameters={"binary_data_output": "yes"})).encode(),
        {},
        422,
        "binary_data must be a boolean",
        id="binary-flag",
    ),
    pytest.param(
        json.dumps(_header(parameters={"ignore_index": 2}))
        .encode()
        .replace(b'"data": [2, 0]', b'"data": [2, 2]'),
        {},
        422,
        "total weight",
        id="zero-weight",
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "fragment"), CASES)
def test_error(
    client: Any, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = client.post("/v2/models/cross-entropy/infer", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert set(error) == {"error"}
    assert fragment in error["error"]


def test_body_over_the_limit() -> None:
    body, headers = request({"logits": np.zeros((100, 10)), "labels": np.zeros(100, np.int64)})
    with TestClient(create_app(Settings(max_body_bytes=1000))) as small:
        response = small.post("/v2/models/cross-entropy/infer", content=body, headers=headers)
    assert response.status_code == 413
    assert "exceeds the limit of 1000 bytes" in response.json()["error"]


def test_never_a_stack_trace(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api.v2 import models

    def broken(*args: Any) -> Any:
        raise RuntimeError("/secret/path")

    monkeypatch.setattr(models.Model, "compute", broken)
    body, headers = request({"logits": LOGITS, "labels": LABELS})
    with TestClient(create_app(), raise_server_exceptions=False) as fresh:
        response = fresh.post("/v2/models/cross-entropy/infer", content=body, headers=headers)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error"}


@pytest.mark.parametrize(
    ("method", "path", "status", "headers"),
    [
        pytest.param("GET", "/v2/no/such/path", 404, {}, id="unknown-path"),
        pytest.param("DELETE", "/v2/models/softmax/infer", 405, {}, id="wrong-method"),
    ],
)
def test_errors_before_a_route_are_protocol_errors(
    method: str, path: str, status: int, headers: dict[str, str]
) -> None:
    with TestClient(create_app(Settings())) as client:
        response = client.request(method, path, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"error"}


def test_missing_key_on_v2_is_a_protocol_error() -> None:
    with TestClient(create_app(Settings(api_keys=["k1"]))) as client:
        response = client.post("/v2/models/softmax/infer", content=b"{}")
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert response.headers["www-authenticate"].startswith("Bearer")
