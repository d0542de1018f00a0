"""Every error of /v2 REST has its gRPC twin: the same message, the status's gRPC code.

Each case is a ModelInferRequest; where the same request can be written as /v2 REST
(JSON data for typed contents, Triton's binary data for raw contents), that request is
sent too and must fail with the same message and the status that maps to the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import grpc
import numpy as np
import pytest

from app.api.grpc.service import CODES
from tests.api.grpc.wire import Served, infer_request, served, service_pb2, set_parameter
from tests.api.v2.wire import _json_value

LOGITS = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], np.float32)
LABELS = np.array([2, 0], np.int64)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with served(max_elements=10_000, max_rank=4) as live:
        yield live


def _request(raw: bool = False, **changes: Any) -> Any:
    inputs = changes.pop("inputs", {"logits": LOGITS, "labels": LABELS})
    return infer_request("cross-entropy", inputs, raw=raw, **changes)


def _with(change: Callable[[Any], None], raw: bool = False, **changes: Any) -> Any:
    request = _request(raw, **changes)
    change(request)
    return request


def _value(parameter: Any) -> Any:
    kind = parameter.WhichOneof("parameter_choice")
    return None if kind is None else getattr(parameter, kind)


def rest_twin(request: Any) -> tuple[str, bytes, dict[str, str]] | None:
    """The same request as /v2 REST; None when REST cannot say it."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        return None
    tensors, blobs = [], []
    for index, tensor in enumerate(request.inputs):
        if raw and tensor.HasField("contents"):
            return None
        described: dict[str, Any] = {
            "name": tensor.name,
            "shape": list(tensor.shape),
            "datatype": tensor.datatype,
        }
        parameters = {key: _value(value) for key, value in tensor.parameters.items()}
        if raw:
            blobs.append(raw[index])
            parameters["binary_data_size"] = len(raw[index])
        elif tensor.HasField("contents"):
            filled = tensor.contents.ListFields()
            values = list(filled[0][1]) if filled else []
            described["data"] = [_json_value(v) for v in values]
        else:
            return None
        if parameters:
            described["parameters"] = parameters
        tensors.append(described)
    header: dict[str, Any] = {"inputs": tensors}
    if request.parameters:
        header["parameters"] = {k: _value(v) for k, v in request.parameters.items()}
    if request.outputs:
        header["outputs"] = [{"name": out.name} for out in request.outputs]
    body = json.dumps(header).encode()
    headers = {"content-type": "application/json"}
    if blobs:
        headers["inference-header-content-length"] = str(len(body))
        body += b"".join(blobs)
    path = f"/v2/models/{request.model_name}/infer"
    if request.model_version:
        path = f"/v2/models/{request.model_name}/versions/{request.model_version}/infer"
    return path, body, headers


def _no_value(request: Any) -> None:
    request.parameters["reduction"].Clear()


def _negative_shape(request: Any) -> None:
    request.inputs[1].shape[0] = -2


def _drop_raw(request: Any) -> None:
    del request.raw_input_contents[1]


def _drop_contents(request: Any) -> None:
    request.inputs[1].ClearField("contents")


def _add_contents(request: Any) -> None:
    request.inputs[0].contents.fp32_contents.extend([1.0] * 6)


def _datatype(name: str, index: int = 0) -> Callable[[Any], None]:
    def change(request: Any) -> None:
        request.inputs[index].datatype = name

    return change


def _shape(shape: list[int], index: int = 0) -> Callable[[Any], None]:
    def change(request: Any) -> None:
        del request.inputs[index].shape[:]
        request.inputs[index].shape.extend(shape)

    return change


def _rename(name: str) -> Callable[[Any], None]:
    def change(request: Any) -> None:
        request.inputs[0].name = name

    return change


def _duplicate(request: Any) -> None:
    request.inputs.add().CopyFrom(request.inputs[0])


def _labels_as_floats(request: Any) -> None:
    request.inputs[1].contents.ClearField("int64_contents")
    request.inputs[1].contents.fp32_contents.extend([2.5, 0.0])


def _model(name: str, version: str = "") -> Callable[[Any], None]:
    def change(request: Any) -> None:
        request.model_name = name
        request.model_version = version

    return change


def _short_raw(request: Any) -> None:
    request.raw_input_contents[0] = request.raw_input_contents[0][:8]


def _parameter(key: str, value: Any) -> Callable[[Any], None]:
    def change(request: Any) -> None:
        set_parameter(request.parameters[key], value)

    return change


CASES = [
    pytest.param(_with(_drop_raw, raw=True), "raw_input_contents has 1 entries", id="raw-count"),
    pytest.param(_with(_drop_contents), "no contents and no raw_input_contents", id="no-data"),
    pytest.param(_with(_add_contents, raw=True), "both contents and raw", id="both-ways"),
    pytest.param(_with(_short_raw, raw=True), "got 8 bytes, but shape [2, 3]", id="raw-size"),
    pytest.param(_with(_negative_shape), "Expected `int` >= 0", id="negative-shape"),
    pytest.param(_with(_no_value), "'reduction' has no value", id="parameter-no-value"),
    pytest.param(_with(_datatype("BYTES")), "unsupported datatype", id="bytes"),
    pytest.param(_with(_datatype("BOOL"), raw=True), "unsupported datatype", id="bool"),
    pytest.param(_with(_shape([3, 3])), "needs 9 values", id="shape"),
    pytest.param(_with(_shape([3, 3]), raw=True), "needs 36", id="shape-raw"),
    pytest.param(_with(_rename("oops")), "unknown input", id="input"),
    pytest.param(_with(_duplicate), "given twice", id="duplicate-input"),
    pytest.param(_with(_labels_as_floats), "go in contents.int64_contents", id="wrong-contents"),
    pytest.param(
        _request(inputs={"logits": LOGITS, "labels": np.array([3, 0])}),
        "labels must be integers in [0, 3)",
        id="label-range",
    ),
    pytest.param(
        _request(
            inputs={"logits": np.array([[1, np.nan, 3], [1, 1, 1]], np.float32), "labels": LABELS}
        ),
        "got nan at [0, 1]",
        id="nan-logit",
    ),
    pytest.param(_request(inputs={"logits": LOGITS}), "labels is required", id="no-labels"),
    pytest.param(
        _request(inputs={"logits": np.zeros((0, 3), np.float32), "labels": LABELS[:0]}),
        "must not be empty",
        id="empty",
    ),
    pytest.param(_request(outputs=["nope"]), "unknown output", id="output"),
    pytest.param(
        _with(_parameter("outputs", "probs")), "unknown parameter 'outputs'", id="reserved"
    ),
    pytest.param(_with(_parameter("reduction", "avg")), "parameters.reduction", id="reduction"),
    pytest.param(
        _with(_parameter("binary_data_output", "yes")),
        "binary_data must be a boolean",
        id="binary-flag",
    ),
    pytest.param(
        _request(
            inputs={"logits": LOGITS, "labels": np.array([2, 2])}, parameters={"ignore_index": 2}
        ),
        "total weight",
        id="zero-weight",
    ),
    pytest.param(
        _request(inputs={"logits": np.zeros((1, 1, 1, 1, 2), np.float32), "labels": LABELS}),
        "5 dimensions; at most 4",
        id="rank",
    ),
    pytest.param(
        _request(inputs={"logits": np.zeros((101, 100), np.float32), "labels": LABELS}),
        "10100 elements; at most 10000",
        id="elements",
    ),
    pytest.param(_with(_model("nope")), "unknown model 'nope'", id="model"),
    pytest.param(_with(_model("cross-entropy", "2")), "only version 1, not '2'", id="version"),
]


def _status(code: grpc.StatusCode) -> set[HTTPStatus]:
    return {status for status, mapped in CODES.items() if mapped == code}


# Requests REST cannot say: a parameter without a value, values in another type's field.
GRPC_ONLY = {"parameter-no-value", "wrong-contents"}


@pytest.mark.parametrize(("request_", "fragment"), CASES)
def test_error_twin(
    server: Served, request_: Any, fragment: str, request: pytest.FixtureRequest
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ModelInfer(request_)
    error = caught.value
    assert fragment in error.details()
    twin = None if request.node.callspec.id in GRPC_ONLY else rest_twin(request_)
    if twin is None:
        assert error.code() == INVALID, error.details()  # what REST's malformed body is
        return
    path, body, headers = twin
    rest = server.rest.post(path, content=body, headers=headers)
    assert HTTPStatus(rest.status_code) in _status(error.code()), rest.text
    assert rest.json() == {"error": error.details()}


def test_not_a_protobuf_message(server: Served) -> None:
    call = server.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff\xff")
    assert caught.value.code() == INVALID
    assert "not a ModelInferRequest" in caught.value.details()


def test_metadata_of_an_unknown_model_is_not_found(server: Served) -> None:
    for call, request in [
        (server.stub.ModelMetadata, service_pb2.ModelMetadataRequest(name="nope")),
        (server.stub.ModelReady, service_pb2.ModelReadyRequest(name="softmax", version="7")),
        (server.stub.ModelConfig, service_pb2.ModelConfigRequest(name="nope")),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            call(request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert server.rest.get("/v2/models/nope").json() == {"error": caught.value.details()}


def test_a_message_over_the_body_limit_is_resource_exhausted() -> None:
    request = _request(
        raw=True,
        inputs={"logits": np.zeros((100, 10), np.float32), "labels": np.zeros(100, np.int64)},
    )
    with served(max_body_bytes=1000) as small, pytest.raises(grpc.RpcError) as caught:
        small.stub.ModelInfer(request)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1000" in caught.value.details()


def test_never_a_stack_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api.v2 import models

    def broken(*args: Any) -> Any:
        raise RuntimeError("/secret/path")

    monkeypatch.setattr(models.Model, "compute", broken)
    with served() as fresh, pytest.raises(grpc.RpcError) as caught:
        fresh.stub.ModelInfer(_request(raw=True))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"


def test_more_inputs_than_any_model_takes_are_refused_unread(server: Served) -> None:
    request = service_pb2.ModelInferRequest(model_name="cross-entropy")
    for _ in range(100_000):
        request.inputs.add()
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == INVALID
    assert caught.value.details() == "100000 inputs; a model takes at most 6"


def test_fp16_in_typed_contents_is_refused_by_name(server: Served) -> None:
    request = _request()
    request.inputs[0].datatype = "FP16"
    request.inputs[0].contents.ClearField("fp32_contents")
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ModelInfer(request)
    assert caught.value.code() == INVALID
    assert caught.value.details() == "logits: FP16 values travel as raw_input_contents only"


def test_rests_binary_data_size_on_a_typed_input_is_refused(server: Served) -> None:
    request = _request()
    request.inputs[0].parameters["binary_data_size"].int64_param = 24
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ModelInfer(request)
    assert caught.value.code() == INVALID
    assert "over gRPC, binary data goes in raw_input_contents" in caught.value.details()


def test_a_huge_name_in_an_error_is_cut_to_what_a_status_carries(server: Served) -> None:
    name = "m" * 20_000
    for call, request in [
        (server.stub.ModelInfer, infer_request(name, {"logits": LOGITS})),
        (server.stub.ModelMetadata, service_pb2.ModelMetadataRequest(name=name)),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            call(request)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        details = caught.value.details()
        assert details.startswith("unknown model 'mmm")
        assert details.endswith("...")
        assert len(details) == 4096


@pytest.mark.parametrize(
    "method", ["ModelMetadata", "ModelConfig", "ModelReady", "ServerMetadata", "ServerLive"]
)
def test_a_message_that_does_not_parse_is_invalid_on_every_call(
    server: Served, method: str
) -> None:
    call = server.channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff\xff")
    assert caught.value.code() == INVALID
    assert f"the request is not a {method}Request" in caught.value.details()
