"""Pydantic models of the Open Inference Protocol bodies, for the OpenAPI document only.

Requests are decoded by :mod:`app.api.v2.tensors` (msgspec, raw bytes); these models
describe the same wire format to people and to client generators.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MODELS",
    "ConfigTensor",
    "InferenceError",
    "InferenceParameters",
    "InferenceRequest",
    "InferenceResponse",
    "ModelConfig",
    "ModelMetadata",
    "ModelReady",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerLive",
    "ServerMetadata",
    "ServerReady",
    "TensorMetadata",
]

Datatype = Literal["FP16", "FP32", "FP64", "INT32", "INT64"]
DATA_DOC = (
    "Row-major values, flat or nested (non-finite floats as the strings 'inf', '-inf', 'nan'). "
    "Absent when parameters.binary_data_size says the bytes follow the JSON header."
)


class ServerMetadata(BaseModel):
    """The server's name, version and protocol extensions."""

    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    """Liveness."""

    live: bool


class ServerReady(BaseModel):
    """Readiness of the server."""

    ready: bool


class ModelReady(BaseModel):
    """Readiness of one model."""

    name: str
    ready: bool


class TensorMetadata(BaseModel):
    """A tensor a model takes or returns; -1 is a dimension of any size."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """A model's inputs and outputs."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ConfigTensor(BaseModel):
    """A tensor in Triton's model configuration."""

    name: str
    data_type: str
    dims: list[int]
    optional: bool = False


class ModelConfig(BaseModel):
    """Triton-style model configuration (enough for perf_analyzer)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    input: list[ConfigTensor]
    output: list[ConfigTensor]


class InferenceParameters(BaseModel):
    """Request parameters: the scoring options of /v1, and the binary-output switch."""

    model_config = ConfigDict(extra="allow")

    reduction: Literal["none", "sum", "mean"] | None = None
    ignore_index: int | None = None
    label_smoothing: float | None = None
    temperature: float | None = None
    axis: int | None = None
    precision: Literal["float32", "float64"] | None = None
    binary_data_output: bool | None = Field(
        default=None, description="Return every output as binary data after the JSON header."
    )


class RequestInput(BaseModel):
    """An input tensor: logits (or log_probs, probs), labels, class_weights, ..."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = Field(
        default=None, description="binary_data_size: the byte length of binary data."
    )
    data: list[Any] | None = Field(default=None, description=DATA_DOC)


class RequestOutput(BaseModel):
    """An output asked for by name; parameters.binary_data returns it as binary data."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """An inference request; without outputs, the model's default outputs are returned."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "inputs": [
                        {"name": "logits", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                        {"name": "labels", "shape": [1], "datatype": "INT64", "data": [2]},
                    ],
                    "outputs": [{"name": "loss"}, {"name": "per_sample"}],
                }
            ]
        }
    )

    id: str | None = None
    parameters: InferenceParameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """An output tensor."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = Field(default=None, description=DATA_DOC)


class InferenceResponse(BaseModel):
    """An inference response; parameters say the precision, label kind and reduction used."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class InferenceError(BaseModel):
    """An Open Inference Protocol error."""

    error: str


MODELS: tuple[type[BaseModel], ...] = (InferenceRequest, InferenceResponse, InferenceError)
