"""tritonclient[http] against a live uvicorn: JSON and binary tensors, errors, /v1 equality."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from tests.api.wire import as_array, tensor
from tests.live_server import LiveServer, live_server

httpclient = pytest.importorskip("tritonclient.http")
triton_utils = pytest.importorskip("tritonclient.utils")

RNG = np.random.default_rng(11)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("triton")) as live:
        yield live


@pytest.fixture(scope="module")
def triton(server: LiveServer) -> Iterator[Any]:
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def _input(name: str, array: np.ndarray, binary: bool) -> Any:
    item = httpclient.InferInput(
        name, list(array.shape), triton_utils.np_to_triton_dtype(array.dtype)
    )
    item.set_data_from_numpy(array, binary_data=binary)
    return item


def _v1(server: LiveServer, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
    body = {
        k: tensor(v, json_body=False) if isinstance(v, np.ndarray) else v for k, v in fields.items()
    }
    response = httpx.post(
        f"{server.url}/v1/{endpoint}",
        content=msgspec.msgpack.encode(body),
        headers={"content-type": "application/msgpack"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return msgspec.msgpack.decode(response.content)


def test_health_and_metadata(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("cross-entropy")
    assert not triton.is_model_ready("nope")
    assert triton.get_server_metadata()["name"] == "scorer"
    metadata = triton.get_model_metadata("softmax")
    assert [t["name"] for t in metadata["inputs"]] == ["logits"]
    config = triton.get_model_config("cross-entropy")
    assert {t["name"] for t in config["input"]} >= {"logits", "labels"}


@pytest.mark.parametrize(
    "binary_in", [pytest.param(False, id="json-in"), pytest.param(True, id="binary-in")]
)
@pytest.mark.parametrize(
    "binary_out", [pytest.param(False, id="json-out"), pytest.param(True, id="binary-out")]
)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_cross_entropy_equals_v1(
    server: LiveServer, triton: Any, binary_in: bool, binary_out: bool, dtype: str
) -> None:
    logits = (RNG.normal(size=(32, 10)) * 3).astype(dtype)
    labels = RNG.integers(0, 10, size=32).astype(np.int64)
    names = ["loss", "per_sample", "probs", "accuracy", "overflow_rows", "true_class_rank"]
    result = triton.infer(
        "cross-entropy",
        [_input("logits", logits, binary_in), _input("labels", labels, binary_in)],
        outputs=[httpclient.InferRequestedOutput(n, binary_data=binary_out) for n in names],
        parameters={"label_smoothing": 0.05},
        request_id="r1",
    )
    v1 = _v1(
        server,
        "cross-entropy",
        {
            "logits": logits,
            "labels": labels,
            "label_smoothing": 0.05,
            "outputs": ["per_sample", "probs"],
            "per_sample_diagnostics": True,
        },
    )
    assert result.get_response()["id"] == "r1"
    assert result.get_response()["parameters"]["precision"] == v1["precision"]
    assert result.as_numpy("loss").tolist() == [v1["loss"]]
    assert np.array_equal(result.as_numpy("per_sample"), as_array(v1["per_sample"]))
    assert np.array_equal(result.as_numpy("probs"), as_array(v1["probs"]))
    assert result.as_numpy("accuracy").tolist() == [v1["diagnostics"]["accuracy"]]
    assert result.as_numpy("overflow_rows").tolist() == [
        v1["diagnostics"]["numerical"]["overflow_rows"]
    ]
    assert np.array_equal(
        result.as_numpy("true_class_rank"),
        as_array(v1["diagnostics"]["per_sample"]["true_class_rank"]),
    )


def test_default_outputs_come_binary(server: LiveServer, triton: Any) -> None:
    # Without outputs, tritonclient asks for every output in binary (binary_data_output).
    logits = RNG.normal(size=(8, 6)).astype(np.float32)
    labels = (RNG.uniform(size=(8, 6)) > 0.5).astype(np.float32)
    result = triton.infer(
        "binary-cross-entropy",
        [_input("logits", logits, True), _input("labels", labels, False)],
        parameters={"reduction": "sum"},
    )
    v1 = _v1(
        server, "binary-cross-entropy", {"logits": logits, "labels": labels, "reduction": "sum"}
    )
    outputs = {o["name"]: o for o in result.get_response()["outputs"]}
    assert set(outputs) == {"loss", "loss_sum", "total_weight", "per_sample"}
    assert all("binary_data_size" in o["parameters"] for o in outputs.values())
    assert result.as_numpy("loss").tolist() == [v1["loss"]]
    assert result.as_numpy("per_sample").dtype == np.float32
    assert np.array_equal(result.as_numpy("per_sample"), as_array(v1["per_sample"]))


def test_softmax_int_and_compressed(server: LiveServer, triton: Any) -> None:
    logits = RNG.integers(-5, 5, size=(4, 5)).astype(np.int32)
    result = triton.infer(
        "softmax",
        [_input("logits", logits, True)],
        outputs=[
            httpclient.InferRequestedOutput("probs"),
            httpclient.InferRequestedOutput("logsumexp"),
        ],
        request_compression_algorithm="gzip",
    )
    v1 = _v1(server, "softmax", {"logits": logits.tolist(), "outputs": ["probs", "logsumexp"]})
    assert np.array_equal(result.as_numpy("probs"), np.array(v1["probs"]))
    assert np.array_equal(result.as_numpy("logsumexp"), np.array(v1["logsumexp"]))


def test_non_finite_loss_over_json(triton: Any) -> None:
    logits = np.array([[0.0, -np.inf, 1.0]])
    result = triton.infer(
        "cross-entropy",
        [_input("logits", logits, True), _input("labels", np.array([1]), False)],
        outputs=[httpclient.InferRequestedOutput("loss", binary_data=False)],
    )
    assert result.as_numpy("loss").tolist() == [np.inf]


@pytest.mark.parametrize(
    ("model", "labels", "status", "fragment"),
    [
        pytest.param(
            "cross-entropy",
            np.array([9, 0]),
            "422",
            "labels must be integers in [0, 3)",
            id="label",
        ),
        pytest.param("nope", np.array([0, 0]), "404", "unknown model 'nope'", id="model"),
        pytest.param("softmax", np.array([0, 0]), "422", "unknown input 'labels'", id="input"),
    ],
)
def test_errors(triton: Any, model: str, labels: np.ndarray, status: str, fragment: str) -> None:
    logits = np.zeros((2, 3))
    with pytest.raises(triton_utils.InferenceServerException) as caught:
        triton.infer(model, [_input("logits", logits, True), _input("labels", labels, True)])
    assert caught.value.status() == status
    assert fragment in caught.value.message()


def test_unknown_output(triton: Any) -> None:
    with pytest.raises(triton_utils.InferenceServerException) as caught:
        triton.infer(
            "softmax",
            [_input("logits", np.zeros((1, 2)), False)],
            outputs=[httpclient.InferRequestedOutput("loss")],
        )
    assert caught.value.status() == "422"
    assert "unknown output 'loss'" in caught.value.message()


def test_async_client(server: LiveServer) -> None:
    aio = pytest.importorskip("tritonclient.http.aio")
    import asyncio

    async def run() -> Any:
        client = aio.InferenceServerClient(server.url.removeprefix("http://"))
        try:
            item = aio.InferInput("logits", [1, 3], "FP64")
            item.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]]))
            labels = aio.InferInput("labels", [1], "INT64")
            labels.set_data_from_numpy(np.array([2]))
            return await client.infer("cross-entropy", [item, labels])
        finally:
            await client.close()

    result = asyncio.run(run())
    assert result.as_numpy("loss").tolist() == [pytest.approx(0.4076059644443803, rel=1e-15)]
