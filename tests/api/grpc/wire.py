"""Test-side gRPC: the app served in process, and requests built with tritonclient's
own copy of the protocol (service_pb2), independent of app.api.grpc."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import Settings

tg = pytest.importorskip("tritonclient.grpc")
service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
service_pb2_grpc = pytest.importorskip("tritonclient.grpc.service_pb2_grpc")

DATATYPES = {"float16": "FP16", "float32": "FP32", "float64": "FP64", "int32": "INT32"}
DATATYPES["int64"] = "INT64"
NUMPY = {name: np.dtype(dtype).newbyteorder("<") for dtype, name in DATATYPES.items()}


@dataclass
class Served:
    """One app: REST through a TestClient, gRPC on a port of its own."""

    rest: TestClient
    address: str
    channel: grpc.Channel
    stub: Any

    def triton(self) -> Any:
        return tg.InferenceServerClient(self.address)


@contextmanager
def served(**settings: Any) -> Iterator[Served]:
    """The app with gRPC on a free port, its lifespan running, and a channel to it."""
    app = create_app(Settings(grpc=True, grpc_port=0, **settings))
    with TestClient(app, raise_server_exceptions=False) as rest:
        address = f"127.0.0.1:{app.state.grpc.port}"
        with grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", -1)]
        ) as channel:
            yield Served(rest, address, channel, service_pb2_grpc.GRPCInferenceServiceStub(channel))


def infer_request(
    model: str,
    inputs: dict[str, np.ndarray],
    *,
    raw: bool = True,
    outputs: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> Any:
    """A ModelInferRequest: inputs as raw_input_contents, or in their typed contents."""
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, array in inputs.items():
        tensor = request.inputs.add(
            name=name, datatype=DATATYPES[array.dtype.name], shape=list(array.shape)
        )
        if raw:
            little = np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
            request.raw_input_contents.append(little.tobytes())
        else:
            field = {
                "FP32": "fp32_contents",
                "FP64": "fp64_contents",
                "INT32": "int_contents",
                "INT64": "int64_contents",
            }[tensor.datatype]
            getattr(tensor.contents, field).extend(array.reshape(-1).tolist())
    for name in outputs or ():
        request.outputs.add(name=name)
    for key, value in (parameters or {}).items():
        set_parameter(request.parameters[key], value)
    return request


def set_parameter(parameter: Any, value: Any) -> None:
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    elif isinstance(value, float):
        parameter.double_param = value
    else:
        parameter.string_param = value


def outputs(response: Any) -> dict[str, np.ndarray]:
    """Each output of a ModelInferResponse, from raw_output_contents."""
    assert len(response.raw_output_contents) == len(response.outputs)
    return {
        out.name: np.frombuffer(raw, NUMPY[out.datatype]).reshape(list(out.shape))
        for out, raw in zip(response.outputs, response.raw_output_contents, strict=True)
    }


def parameters(response: Any) -> dict[str, Any]:
    return {
        key: getattr(value, value.WhichOneof("parameter_choice"))
        for key, value in response.parameters.items()
    }
