"""Every public reference case through HTTP: JSON, msgpack, and binary tensors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.wire import as_array, as_float, decode, encode, tensor

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "cross_entropy.json").read_text())
CASES = VECTORS["cases"]
ARRAY_FIELDS = {"logits", "labels", "class_weights", "sample_weights", "pos_weight"}
ENCODINGS = ["json", "msgpack", "json-tensor", "msgpack-tensor"]


def _body(case: dict[str, Any], encoding: str) -> dict[str, Any]:
    body = {k: v for k, v in case["request"].items() if v is not None}
    body["outputs"] = ["per_sample", "probs"]
    if encoding.endswith("tensor"):
        json_body = encoding.startswith("json")
        for name in ARRAY_FIELDS & body.keys():
            values = body[name]
            if name == "labels" and case["endpoint"] == "cross-entropy":
                array = np.array(values)
                if array.dtype.kind == "f":
                    array = array.astype(np.float64)
            else:
                array = np.array(
                    json.loads(json.dumps(values).replace('"nan"', "NaN")), dtype=np.float64
                )
            body[name] = tensor(array, json_body=json_body)
    return body


def _close(got: np.ndarray, expected: np.ndarray, tol: dict[str, float]) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), finite)
    assert np.array_equal(got[~finite], expected[~finite])
    np.testing.assert_allclose(got[finite], expected[finite], rtol=tol["rtol"], atol=tol["atol"])


def _post(client: Any, case: dict[str, Any], encoding: str) -> Any:
    content, media = encode(_body(case, encoding), encoding.split("-")[0])
    return client.post(f"/v1/{case['endpoint']}", content=content, headers={"content-type": media})


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in CASES if "expected" in c])
def test_reference_case(client: Any, case: dict[str, Any], encoding: str) -> None:
    response = _post(client, case, encoding)
    assert response.status_code == 200, response.text
    body = decode(response.content, response.headers["content-type"])
    expected, tol = case["expected"], case["tolerance"]
    _close(as_array(body["per_sample"]), np.array(expected["per_sample"]), tol)
    _close(as_array(body["probs"]), np.array(expected["probs"]), tol)
    if expected["loss"] is None:
        assert body["loss"] is None
    else:
        _close(np.array(as_float(body["loss"])), np.array(expected["loss"]), tol)
    assert body["precision"] == "float64"


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c["name"]) for c in CASES if c.get("expect_error")]
)
def test_reference_error(client: Any, case: dict[str, Any], encoding: str) -> None:
    response = _post(client, case, encoding)
    assert 400 <= response.status_code < 500, response.text
    assert response.status_code == 422
    problem = decode(response.content, response.headers["content-type"])
    assert problem["status"] == 422
    assert any(item["loc"][0] == case["error_field"] for item in problem["errors"]), problem
