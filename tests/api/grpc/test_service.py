"""ModelInfer and the metadata calls over gRPC give what /v2 REST gives, bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.api.grpc.wire import Served, infer_request, outputs, parameters, served, tg
from tests.api.v2 import wire as rest_wire

LOGITS = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 8.0]], np.float32)
LABELS = np.array([2, 0], np.int64)


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with served() as live:
        yield live


def _post_rest(
    server: Served,
    model: str,
    inputs: dict[str, np.ndarray],
    names: list[str] | None,
    params: dict[str, Any] | None,
) -> Any:
    """The same request to /v2 REST with binary tensors in and out."""
    body, headers = rest_wire.request(
        inputs, binary=True, outputs=names, binary_outputs=True, parameters=params
    )
    return server.rest.post(f"/v2/models/{model}/infer", content=body, headers=headers)


def _agree(response: Any, rest: Any, model: str) -> dict[str, np.ndarray]:
    """The gRPC response's outputs, checked bit for bit against REST's answer."""
    assert rest.status_code == 200, rest.text
    header, expected = rest_wire.outputs(
        rest.content, rest.headers.get("inference-header-content-length")
    )
    got = outputs(response)
    assert list(got) == list(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype, name
        np.testing.assert_array_equal(got[name], array, strict=True)
    assert response.model_name == header["model_name"] == model
    assert response.model_version == header["model_version"] == "1"
    assert parameters(response) == header["parameters"]
    return got


def _same_as_rest(
    server: Served,
    model: str,
    inputs: dict[str, np.ndarray],
    names: list[str] | None = None,
    params: dict[str, Any] | None = None,
    raw: bool = True,
) -> dict[str, np.ndarray]:
    response = server.stub.ModelInfer(
        infer_request(model, inputs, raw=raw, outputs=names, parameters=params)
    )
    return _agree(response, _post_rest(server, model, inputs, names, params), model)


def test_the_classic_check_through_tritonclient(server: Served) -> None:
    client = server.triton()
    logits = tg.InferInput("logits", [1, 3], "FP32")
    logits.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]], np.float32))
    labels = tg.InferInput("labels", [1], "INT64")
    labels.set_data_from_numpy(np.array([2], np.int64))
    wanted = [tg.InferRequestedOutput("loss"), tg.InferRequestedOutput("probs")]
    result = client.infer("cross-entropy", [logits, labels], outputs=wanted, request_id="r-1")
    np.testing.assert_allclose(result.as_numpy("loss"), [0.40760596], rtol=1e-7)
    np.testing.assert_allclose(
        result.as_numpy("probs"), [[0.09003057, 0.24472848, 0.66524094]], rtol=1e-6
    )
    assert result.get_response().id == "r-1"
    client.close()


def test_health_and_metadata_through_tritonclient(server: Served) -> None:
    client = server.triton()
    assert client.is_server_live()
    assert client.is_server_ready()
    for name in ("cross-entropy", "binary-cross-entropy", "softmax"):
        assert client.is_model_ready(name)
        assert client.is_model_ready(name, "1")
        metadata = client.get_model_metadata(name, as_json=True)
        rest = server.rest.get(f"/v2/models/{name}").json()
        assert metadata["name"] == rest["name"]
        assert metadata["versions"] == rest["versions"]
        assert metadata["platform"] == rest["platform"]
        for side in ("inputs", "outputs"):
            assert [{**t, "shape": [int(d) for d in t["shape"]]} for t in metadata[side]] == rest[
                side
            ]
        config = client.get_model_config(name, as_json=True)["config"]
        rest_config = server.rest.get(f"/v2/models/{name}/config").json()
        assert config["name"] == name
        assert config.get("backend") == rest_config["backend"]
        assert [
            (t["name"], t["data_type"], [int(d) for d in t["dims"]]) for t in config["input"]
        ] == [(t["name"], t["data_type"], t["dims"]) for t in rest_config["input"]]
        assert [(t["name"], t["data_type"]) for t in config["output"]] == [
            (t["name"], t["data_type"]) for t in rest_config["output"]
        ]
    server_metadata = client.get_server_metadata(as_json=True)
    assert server_metadata["name"] == "scorer"
    assert server_metadata["version"] == server.rest.get("/v2").json()["version"]
    client.close()


@pytest.mark.parametrize(
    ("model", "inputs", "names", "params"),
    [
        pytest.param(
            "cross-entropy", {"logits": LOGITS, "labels": LABELS}, None, None, id="defaults"
        ),
        pytest.param(
            "cross-entropy",
            {"logits": LOGITS, "labels": LABELS},
            ["loss", "per_sample", "probs", "log_probs", "accuracy", "predicted_class"],
            {"precision": "float64", "label_smoothing": 0.1, "reduction": "sum"},
            id="outputs-and-parameters",
        ),
        pytest.param(
            "cross-entropy",
            {
                "logits": LOGITS.astype(np.float64),
                "labels": LABELS.astype(np.int32),
                "class_weights": np.array([1.0, 2.0, 0.5], np.float32),
            },
            ["loss", "loss_sum", "total_weight"],
            {"ignore_index": 0},
            id="weights-ignore-index",
        ),
        pytest.param(
            "cross-entropy",
            {"log_probs": np.log(np.full((2, 4), 0.25, np.float32)), "labels": np.array([1, 3])},
            ["per_sample"],
            {"reduction": "none"},
            id="log-probs",
        ),
        pytest.param(
            "binary-cross-entropy",
            {
                "logits": np.array([[-100.0, 0.0], [3.0, 800.0]], np.float32),
                "labels": np.array([[0.0, 1.0], [1.0, 0.5]], np.float32),
                "pos_weight": np.array([2.0, 1.0], np.float32),
            },
            ["loss", "per_sample"],
            None,
            id="binary",
        ),
        pytest.param(
            "softmax",
            {"logits": np.array([[1e4, -1e4, 0.0], [88.8, 88.7, -88.7]], np.float32)},
            ["probs", "log_probs", "logsumexp", "zero_probs"],
            {"temperature": 2.5},
            id="softmax-extremes",
        ),
        pytest.param(
            "softmax",
            {"logits": np.array([[1.0, 2.0]], np.float16)},
            None,
            None,
            id="fp16",
        ),
    ],
)
def test_outputs_equal_rest(
    server: Served,
    model: str,
    inputs: dict[str, np.ndarray],
    names: list[str] | None,
    params: dict[str, Any] | None,
) -> None:
    _same_as_rest(server, model, inputs, names, params)


def test_typed_contents_give_what_raw_contents_give(server: Served) -> None:
    inputs = {"logits": LOGITS.astype(np.float64), "labels": LABELS}
    names = ["loss", "per_sample", "probs"]
    raw = _same_as_rest(server, "cross-entropy", inputs, names)
    typed = _same_as_rest(server, "cross-entropy", inputs, names, raw=False)
    for name in names:
        np.testing.assert_array_equal(typed[name], raw[name], strict=True)


def test_no_outputs_asked_gives_the_default_outputs(server: Served) -> None:
    got = _same_as_rest(server, "cross-entropy", {"logits": LOGITS, "labels": LABELS})
    assert list(got) == ["loss", "loss_sum", "total_weight", "per_sample"]


_HARD = st.sampled_from(
    [0.0, -0.0, 1e-45, -1e-45, 88.72, -88.72, 709.78, 1e30, -1e30, 3.4e38, -3.4e38]
)
_FLOATS = st.one_of(_HARD, st.floats(-1e4, 1e4, width=32))


@settings(max_examples=40, deadline=None)
@given(
    logits=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 5), st.integers(2, 6)),
        elements=_FLOATS,
    ),
    seed=st.integers(0, 2**32 - 1),
    precision=st.sampled_from(["float32", "float64"]),
)
def test_hard_inputs_agree_with_rest_bit_for_bit(
    server: Served, logits: np.ndarray, seed: int, precision: str
) -> None:
    """The same outputs, or the same error (a float32 row spanning past its range)."""
    labels = np.random.default_rng(seed).integers(0, logits.shape[1], logits.shape[0])
    inputs = {"logits": logits, "labels": labels}
    names = ["loss", "per_sample", "probs", "log_probs"]
    params = {"precision": precision}
    rest = _post_rest(server, "cross-entropy", inputs, names, params)
    request = infer_request("cross-entropy", inputs, outputs=names, parameters=params)
    if rest.status_code == 200:
        _agree(server.stub.ModelInfer(request), rest, "cross-entropy")
        return
    assert rest.status_code == 422, rest.text
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == rest.json()["error"]


def test_a_large_batch_takes_a_worker_thread_and_agrees(server: Served) -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 4, (2048, 100)).astype(np.float32)
    labels = rng.integers(0, 100, 2048)
    got = _same_as_rest(
        server, "cross-entropy", {"logits": logits, "labels": labels}, ["loss", "probs"]
    )
    assert got["probs"].shape == (2048, 100)


@settings(max_examples=60, deadline=None)
@given(
    arrays=st.lists(
        hnp.arrays(
            st.sampled_from([np.dtype("<f4"), np.dtype(">f8"), np.dtype("<i8"), np.dtype(">i4")]),
            hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=70),
        ),
        min_size=0,
        max_size=4,
    ),
    request_id=st.text(max_size=5),
)
def test_a_written_response_is_what_protobuf_writes(
    arrays: list[np.ndarray], request_id: str
) -> None:
    """The raw contents appended by hand parse as protobuf's own message, any length."""
    from app.api.grpc.messages import parameter, write_response
    from app.api.grpc.protos import grpc_predict_v2_pb2 as pb
    from app.api.v2.tensors import OutputTensor, datatype_of

    header = {
        "model_name": "softmax",
        "model_version": "1",
        "id": request_id,
        "parameters": {"precision": "float32", "count": 3, "flag": True, "t": 0.5},
    }
    outs = [OutputTensor(f"o{i}", array, True) for i, array in enumerate(arrays)]
    expected = pb.ModelInferResponse(model_name="softmax", model_version="1", id=request_id)
    for key, value in header["parameters"].items():
        expected.parameters[key].CopyFrom(parameter(value))
    for out in outs:
        expected.outputs.add(name=out.name, datatype=datatype_of(out.array), shape=out.array.shape)
        expected.raw_output_contents.append(
            out.array.astype(out.array.dtype.newbyteorder("<")).tobytes()
        )
    assert pb.ModelInferResponse.FromString(write_response(header, outs)) == expected
