"""POST /v2/models/{name}/infer: the /v1 numbers through the Open Inference Protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import LossOptions, score_cross_entropy
from tests.api.v2.wire import outputs, request
from tests.api.wire import as_array, tensor

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "cross_entropy.json").read_text())
CASES = VECTORS["cases"]
ARRAY_FIELDS = {"logits", "labels", "class_weights", "sample_weights", "pos_weight"}
RNG = np.random.default_rng(5)


def _nan_aware(values: Any) -> np.ndarray:
    return np.array(
        json.loads(json.dumps(values).replace('"nan"', "NaN").replace('"-inf"', "-1e999"))
    )


def _vector_inputs(case: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    inputs, parameters = {}, {}
    for key, value in case["request"].items():
        if value is None:
            continue
        if key in ARRAY_FIELDS:
            array = _nan_aware(value)
            inputs[key] = array if array.dtype.kind == "i" else array.astype(np.float64)
        else:
            parameters[key] = value
    return inputs, parameters


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _infer(client: Any, model: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/v2/models/{model}/infer", content=body, headers=headers)


def _ok(response: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    assert response.status_code == 200, response.text
    return outputs(response.content, response.headers.get("inference-header-content-length"))


def _close(got: np.ndarray, expected: Any, tol: dict[str, float]) -> None:
    expected = np.asarray(_nan_aware(expected), dtype=np.float64)
    assert got.shape == expected.shape
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(got), finite)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize(
    "binary", [pytest.param(False, id="json"), pytest.param(True, id="binary")]
)
@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in CASES if "expected" in c])
def test_reference_case(client: Any, case: dict[str, Any], binary: bool) -> None:
    inputs, parameters = _vector_inputs(case)
    names = ["loss", "per_sample", "probs"]
    body, headers = request(
        inputs, binary=binary, outputs=names, binary_outputs=binary, parameters=parameters
    )
    header, out = _ok(_infer(client, case["endpoint"], body, headers))
    expected, tol = case["expected"], case["tolerance"]
    _close(out["per_sample"], expected["per_sample"], tol)
    _close(out["probs"], expected["probs"], tol)
    if expected["loss"] is None:
        assert np.isnan(out["loss"]).all()  # asked for by name, with reduction none
    else:
        _close(out["loss"], [expected["loss"]], tol)
    assert header["parameters"]["precision"] == "float64"


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c["name"]) for c in CASES if c.get("expect_error")]
)
def test_reference_error(client: Any, case: dict[str, Any]) -> None:
    # JSON data as the vector has it (nested, strings, ragged); the shape of its first rows.
    tensors, parameters = [], {}
    for key, value in case["request"].items():
        if value is None:
            continue
        if key not in ARRAY_FIELDS:
            parameters[key] = value
            continue
        shape, level = [], value
        while isinstance(level, list):
            shape.append(len(level))
            level = level[0] if level else None
        integers = all(type(v) is int for v in _leaves(value))
        datatype = "INT64" if key == "labels" and integers else "FP64"
        tensors.append({"name": key, "shape": shape, "datatype": datatype, "data": value})
    body = json.dumps({"inputs": tensors, "parameters": parameters}).encode()
    response = _infer(client, case["endpoint"], body, {})
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error"}


def _v1(client: Any, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
    body = {
        k: tensor(v, json_body=False) if isinstance(v, np.ndarray) else v for k, v in fields.items()
    }
    response = client.post(
        f"/v1/{endpoint}",
        content=msgspec.msgpack.encode(body),
        headers={"content-type": "application/msgpack"},
    )
    assert response.status_code == 200, response.text
    return msgspec.msgpack.decode(response.content)


def _batch(dtype: str, n: int = 64, c: int = 7) -> tuple[np.ndarray, np.ndarray]:
    logits = (RNG.normal(size=(n, c)) * 4).astype(dtype)
    return logits, RNG.integers(0, c, size=n)


DIAGNOSTICS = ["accuracy", "mean_confidence", "mean_entropy", "mean_true_class_prob", "count"]
NUMERICAL = ["max_abs_logit", "overflow_rows", "underflow_rows", "zero_probs"]
PER_SAMPLE = ["predicted_class", "confidence", "true_class_prob", "margin", "true_class_rank"]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("label_dtype", ["int32", "int64"])
@pytest.mark.parametrize(
    "binary", [pytest.param(False, id="json"), pytest.param(True, id="binary")]
)
def test_cross_entropy_equals_v1(client: Any, dtype: str, label_dtype: str, binary: bool) -> None:
    logits, labels = _batch(dtype)
    labels = labels.astype(label_dtype)
    weights = RNG.uniform(0.5, 2, size=7)
    options = {"label_smoothing": 0.1, "temperature": 1.5, "ignore_index": 3}
    v1 = _v1(
        client,
        "cross-entropy",
        {
            "logits": logits,
            "labels": labels,
            "class_weights": weights,
            "outputs": ["per_sample", "probs", "log_probs"],
            "per_sample_diagnostics": True,
            **options,
        },
    )
    names = ["loss", "loss_sum", "total_weight", "per_sample", "probs", "log_probs"]
    body, headers = request(
        {"logits": logits, "labels": labels, "class_weights": weights},
        binary=binary,
        outputs=names + DIAGNOSTICS + NUMERICAL + PER_SAMPLE,
        binary_outputs=binary,
        parameters=options,
    )
    header, out = _ok(_infer(client, "cross-entropy", body, headers))
    assert header["parameters"] == {
        "precision": v1["precision"],
        "label_kind": "index",
        "reduction": "mean",
    }
    assert header["model_name"] == "cross-entropy"
    for name in ("loss", "loss_sum", "total_weight"):
        assert out[name].tolist() == [v1[name]]
    for name in ("per_sample", "probs", "log_probs"):
        assert np.array_equal(out[name], as_array(v1[name]), equal_nan=True)
        assert out[name].dtype == as_array(v1[name]).dtype
    for name in DIAGNOSTICS:
        assert out[name].tolist() == [v1["diagnostics"][name]]
    for name in NUMERICAL:
        assert out[name].tolist() == [v1["diagnostics"]["numerical"][name]]
    for name in PER_SAMPLE:
        expected = as_array(v1["diagnostics"]["per_sample"][name])
        assert np.array_equal(out[name], expected, equal_nan=True)


def test_binary_cross_entropy_equals_v1(client: Any) -> None:
    logits = RNG.normal(size=(16, 5)).astype(np.float32)
    labels = (RNG.uniform(size=(16, 5)) > 0.5).astype(np.float32)
    pos_weight = np.array([1.0, 2.0, 3.0, 0.5, 1.0], dtype=np.float32)
    v1 = _v1(
        client,
        "binary-cross-entropy",
        {"logits": logits, "labels": labels, "pos_weight": pos_weight, "reduction": "sum"},
    )
    body, headers = request(
        {"logits": logits, "labels": labels, "pos_weight": pos_weight},
        binary=True,
        parameters={"reduction": "sum", "binary_data_output": True},
    )
    header, out = _ok(_infer(client, "binary-cross-entropy", body, headers))
    assert sorted(out) == ["loss", "loss_sum", "per_sample", "total_weight"]  # the defaults
    assert out["loss"].tolist() == [v1["loss"]]
    assert np.array_equal(out["per_sample"], as_array(v1["per_sample"]))
    assert header["parameters"]["label_kind"] == "binary"


def test_softmax_equals_v1(client: Any) -> None:
    logits = RNG.normal(size=(3, 4, 9))
    v1 = _v1(
        client,
        "softmax",
        {"logits": logits, "outputs": ["probs", "log_probs", "logsumexp"], "temperature": 2.0},
    )
    body, headers = request(
        {"logits": logits},
        outputs=["probs", "log_probs", "logsumexp", "mean_entropy"],
        parameters={"temperature": 2.0},
    )
    _, out = _ok(_infer(client, "softmax", body, headers))
    for name in ("probs", "log_probs", "logsumexp"):
        assert np.array_equal(out[name], as_array(v1[name]))
    assert out["mean_entropy"].tolist() == [v1["diagnostics"]["mean_entropy"]]


def test_default_outputs(client: Any) -> None:
    body, headers = request({"logits": RNG.normal(size=(2, 3))})
    header, out = _ok(_infer(client, "softmax", body, headers))
    assert list(out) == ["probs"]
    assert header["outputs"][0]["datatype"] == "FP64"
    logits, labels = _batch("float64")
    body, headers = request({"logits": logits, "labels": labels}, parameters={"reduction": "none"})
    _, out = _ok(_infer(client, "cross-entropy", body, headers))
    assert list(out) == ["loss_sum", "total_weight", "per_sample"]  # no loss with reduction none


def test_binary_flags_per_output(client: Any) -> None:
    logits, labels = _batch("float32")
    tensors = {"logits": logits, "labels": labels}
    header_json, _ = request(tensors, outputs=["loss"])
    header = json.loads(header_json)
    header["outputs"] = [
        {"name": "loss", "parameters": {"binary_data": False}},
        {"name": "per_sample"},
    ]
    header["parameters"] = {"binary_data_output": True}
    response = _infer(client, "cross-entropy", json.dumps(header).encode(), {})
    described, out = _ok(response)
    assert response.headers["content-type"] == "application/octet-stream"
    assert "data" in described["outputs"][0]
    assert described["outputs"][1]["parameters"]["binary_data_size"] == 64 * 4
    assert out["per_sample"].dtype == np.float32


def test_mixed_binary_and_json_inputs_nested_data(client: Any) -> None:
    logits = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    blob = logits.tobytes()
    header = {
        "id": "req-7",
        "inputs": [
            {
                "name": "logits",
                "shape": [2, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(blob)},
            },
            {"name": "labels", "shape": [2], "datatype": "INT64", "data": [[2, 0]]},
        ],
        "outputs": [{"name": "per_sample"}],
    }
    encoded = json.dumps(header).encode()
    response = _infer(
        client,
        "cross-entropy",
        encoded + blob,
        {"inference-header-content-length": str(len(encoded))},
    )
    described, out = _ok(response)
    assert described["id"] == "req-7"
    assert response.headers["content-type"] == "application/json"
    np.testing.assert_allclose(out["per_sample"], [0.40760596, 0.40760596], rtol=1e-6)


def test_non_finite_outputs(client: Any) -> None:
    logits = np.array([[0.0, -np.inf, 1.0]])
    labels = np.array([1])
    for binary in (False, True):
        body, headers = request(
            {"logits": logits, "labels": labels}, outputs=["loss", "probs"], binary_outputs=binary
        )
        response = _infer(client, "cross-entropy", body, headers)
        _, out = _ok(response)
        assert out["loss"].tolist() == [np.inf]
        assert out["probs"][0, 1] == 0.0
        if not binary:
            assert '"data":["inf"]' in response.text


def test_version_route(client: Any) -> None:
    body, headers = request({"logits": RNG.normal(size=(2, 3))})
    ok = client.post("/v2/models/softmax/versions/1/infer", content=body, headers=headers)
    assert ok.status_code == 200
    missing = client.post("/v2/models/softmax/versions/2/infer", content=body, headers=headers)
    assert missing.status_code == 404
    assert "only version 1" in missing.json()["error"]


@pytest.mark.parametrize("nested", [False, True])
def test_a_large_json_body_read_in_one_pass_equals_v1(client: Any, nested: bool) -> None:
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(2000, 40))
    labels = rng.integers(0, 40, size=2000)
    data = logits.tolist() if nested else logits.reshape(-1).tolist()
    body = {
        "inputs": [
            {"name": "logits", "shape": [2000, 40], "datatype": "FP64", "data": data},
            {"name": "labels", "shape": [2000], "datatype": "INT64", "data": labels.tolist()},
        ],
        "outputs": [{"name": "loss"}, {"name": "per_sample"}],
    }
    content = json.dumps(body).encode()
    assert len(content) > 16 << 10  # past ONE_PASS_BYTES
    _, found = _ok(_infer(client, "cross-entropy", content, {"content-type": "application/json"}))
    # /v2 asks the core for no diagnostics when no output needs them, as this does.
    expected = score_cross_entropy(logits, labels, LossOptions(diagnostics=False))
    assert found["loss"][0] == expected.loss
    np.testing.assert_array_equal(found["per_sample"], expected.per_sample)
    body["surprise"] = 1  # declined by the one pass; the exact path words the error
    refused = _infer(client, "cross-entropy", json.dumps(body).encode(), {})
    assert refused.status_code == 400
    assert "surprise" in refused.json()["error"]


def test_binary_inputs_of_a_body_that_came_in_parts(client: Any) -> None:
    # The pipeline joins a body sent in several messages into a bytearray: its slices
    # are binary data too, not numbers already read.
    import asyncio

    logits = np.random.default_rng(3).normal(size=(700, 500)).astype(np.float32)
    labels = np.arange(700) % 500
    blobs = [logits.tobytes(), labels.astype("<i8").tobytes()]
    inputs = [
        {"name": "logits", "shape": [700, 500], "datatype": "FP32",
         "parameters": {"binary_data_size": len(blobs[0])}},
        {"name": "labels", "shape": [700], "datatype": "INT64",
         "parameters": {"binary_data_size": len(blobs[1])}},
    ]  # fmt: skip
    header = json.dumps({"inputs": inputs, "outputs": [{"name": "loss"}]}).encode()
    body = header + b"".join(blobs)
    assert len(body) > 1 << 20
    parts = [body[:100_000], body[100_000:]]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if parts:
            chunk = parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(parts)}
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v2/models/cross-entropy/infer", "raw_path": b"",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2), "state": {},
        "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode()),
            (b"inference-header-content-length", str(len(header)).encode()),
        ],
    }  # fmt: skip
    asyncio.run(client.app(scope, receive, send))
    assert sent[0]["status"] == 200, sent
    answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    expected = score_cross_entropy(logits, labels, LossOptions(diagnostics=False)).loss
    assert answer["outputs"][0]["data"][0] == pytest.approx(expected, rel=1e-6)


_VARIANTS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=5), st.integers()),
        "parameters": st.dictionaries(
            st.sampled_from(["reduction", "axis", "temperature", "bogus"]),
            st.one_of(st.sampled_from(["sum", "mean", "x"]), st.integers(-2, 2), st.floats()),
            max_size=2,
        ),
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["loss", "probs", "nope"])}),
            max_size=2,
        ),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=_VARIANTS,
    datatype=st.sampled_from(["FP32", "FP64", "INT64", "BOOL"]),
    shape_delta=st.sampled_from([0, 0, 0, 1, -1]),
    label_type=st.sampled_from(["INT64", "FP32"]),
    mangle=st.sampled_from([None, "nested-bad", "string", "null", "extra-key", "bom"]),
    input_parameters=st.one_of(
        st.none(),
        st.sampled_from([5, 0, True, 1.5, "x", [1], {}, {"binary_data_size": 4}, {"a": 1}]),
    ),
)
def test_one_pass_and_two_steps_answer_alike(
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
    header: dict[str, Any],
    datatype: str,
    shape_delta: int,
    label_type: str,
    mangle: str | None,
    input_parameters: Any,
) -> None:
    import app.api.v2.infer as infer_module

    logits = np.round(np.random.default_rng(5).normal(size=(300, 12)), 3)
    data: Any = logits.reshape(-1).tolist()
    if mangle == "nested-bad":
        data[7] = [1.0]
    elif mangle == "string":
        data[3] = "inf"
    elif mangle == "null":
        data = None
    logits_input: dict[str, Any] = {
        "name": "logits", "shape": [300, 12 + shape_delta], "datatype": datatype, "data": data,
    }  # fmt: skip
    if mangle == "extra-key":
        logits_input["surprise"] = 1
    if input_parameters is not None:
        logits_input["parameters"] = input_parameters
    labels = {"name": "labels", "shape": [300], "datatype": label_type, "data": [1] * 300}
    content = json.dumps({"inputs": [logits_input, labels], **header}).encode()
    if mangle == "bom":
        content = b"\xef\xbb\xbf" + content
    answers = []
    for size in (16 << 10, 1 << 40):
        monkeypatch.setattr(infer_module, "ONE_PASS_BYTES", size)
        response = _infer(client, "cross-entropy", content, {"content-type": "application/json"})
        answers.append((response.status_code, response.content))
    assert answers[0] == answers[1]
