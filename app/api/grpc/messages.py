"""The protocol's protobuf messages in and out: a ModelInferRequest as /v2 reads a request.

A ``ModelInferRequest`` carries each input's values either as ``raw_input_contents``
(its little-endian bytes, one entry per input, in order: what tritonclient sends) or
in the ``contents`` field of its datatype (``fp32_contents`` for FP32, ...). Both become
the :class:`~app.api.v2.tensors.InferRequest` and per-input bytes or numbers that /v2
REST reads from JSON, so the two front doors share every check after the transport:
the same inputs give the same outputs and the same error messages. Outputs travel as
``raw_output_contents``, as Triton sends them and tritonclient reads them.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from google.protobuf.message import DecodeError

from app.api.grpc.protos import grpc_predict_v2_pb2 as pb
from app.api.v2.models import MODELS
from app.api.v2.tensors import DATATYPES, Flat, InferRequest, OutputTensor, datatype_of
from app.codecs import InvalidArray, MalformedBody

__all__ = ["Parsed", "parameter", "read_request", "write_response"]

# The typed field of each datatype's values (the protocol has none for FP16: raw only).
_CONTENTS: dict[str, tuple[str, np.dtype[Any]]] = {
    "FP32": ("fp32_contents", np.dtype(np.float32)),
    "FP64": ("fp64_contents", np.dtype(np.float64)),
    "INT32": ("int_contents", np.dtype(np.int32)),
    "INT64": ("int64_contents", np.dtype(np.int64)),
}


# The most any model takes: more is refused before anything is read.
_MOST_INPUTS = max(len(model.inputs) for model in MODELS.values())
_MOST_OUTPUTS = max(len(model.outputs) for model in MODELS.values())
_MOST_PARAMETERS = 64  # the models' and tritonclient's own (sequence_id, priority, ...)


class Parsed(msgspec.Struct, frozen=True):
    """A ModelInferRequest read: the model asked for, the request, each input's data."""

    model_name: str
    model_version: str
    request: InferRequest
    blobs: list[bytes | Flat]


def read_request(body: bytes) -> Parsed:
    """The serialized ModelInferRequest ``body`` as /v2 REST reads a request.

    Raises:
        MalformedBody: not a ModelInferRequest, a parameter without a value, a shape
            below zero, or input data given both ways, neither way, or miscounted (400).
        InvalidArray: values in a ``contents`` field other than their datatype's (422).
    """
    try:
        message = pb.ModelInferRequest.FromString(body)
    except DecodeError as exc:
        raise MalformedBody(f"the inference request is not a ModelInferRequest: {exc}") from exc
    _check_counts(message)
    raw = list(message.raw_input_contents)  # each a copy: taken once
    if raw and len(raw) != len(message.inputs):
        raise MalformedBody(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs; "
            "it needs one for each input, in order"
        )
    inputs: list[dict[str, Any]] = []
    blobs: list[bytes | Flat] = []
    for index, tensor in enumerate(message.inputs):
        parameters = _parameters(tensor.parameters, f"inputs[{index}].parameters")
        has_contents = tensor.HasField("contents")
        if raw:
            if has_contents:
                raise MalformedBody(
                    f"input {tensor.name!r}: both contents and raw_input_contents; "
                    "a request sends every input one way"
                )
            # /v2's binary data: its size is checked against the shape and datatype.
            parameters["binary_data_size"] = len(raw[index])
            blobs.append(raw[index])
        elif has_contents:
            if "binary_data_size" in parameters:
                raise MalformedBody(
                    f"input {tensor.name!r}: binary_data_size is REST's binary extension; "
                    "over gRPC, binary data goes in raw_input_contents"
                )
            blobs.append(_values(tensor))
        else:
            raise MalformedBody(f"input {tensor.name!r}: no contents and no raw_input_contents")
        inputs.append(
            {
                "name": tensor.name,
                "shape": list(tensor.shape),
                "datatype": tensor.datatype,
                "parameters": parameters,
            }
        )
    header: dict[str, Any] = {
        "inputs": inputs,
        "parameters": _parameters(message.parameters, "parameters"),
    }
    if message.id:
        header["id"] = message.id
    if message.outputs:
        header["outputs"] = [
            {
                "name": out.name,
                "parameters": _parameters(out.parameters, f"outputs[{index}].parameters"),
            }
            for index, out in enumerate(message.outputs)
        ]
    try:
        request = msgspec.convert(header, InferRequest)
    except msgspec.ValidationError as exc:  # as /v2 REST words it (a shape below zero)
        raise MalformedBody(f"invalid inference request: {exc}") from exc
    return Parsed(message.model_name, message.model_version, request, blobs)


def _check_counts(message: Any) -> None:
    """Refuse more inputs, outputs or parameters than any model has, before reading them.

    A message of the body limit can hold millions of empty ones; each read would cost
    far more than its bytes (REST's JSON decoder bounds them by nesting and size alone).
    """
    counts = (
        ("inputs", len(message.inputs), _MOST_INPUTS),
        ("outputs", len(message.outputs), _MOST_OUTPUTS),
        ("parameters", len(message.parameters), _MOST_PARAMETERS),
    )
    for field, count, most in counts:
        if count > most:
            raise MalformedBody(f"{count} {field}; a model takes at most {most}")


def _parameters(given: Any, where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in given.items():
        kind = value.WhichOneof("parameter_choice")
        if kind is None:
            raise MalformedBody(f"{where}: {key!r} has no value")
        values[key] = getattr(value, kind)
    return values


def _values(tensor: Any) -> Flat:
    """The values of ``contents``, in the field of the input's datatype."""
    filled = [field.name for field, _ in tensor.contents.ListFields()]
    expected = _CONTENTS.get(tensor.datatype)
    if expected is None:
        if tensor.datatype in DATATYPES:  # FP16: the protocol has no typed field for it
            raise InvalidArray(
                f"{tensor.name}: {tensor.datatype} values travel as raw_input_contents only",
                (tensor.name, "contents"),
            )
        # Empty: decode_input refuses the datatype, in the words /v2 REST uses.
        return np.empty(0)
    name, dtype = expected
    if any(field != name for field in filled):
        given = ", ".join(f"contents.{field}" for field in filled)
        raise InvalidArray(
            f"{tensor.name}: {tensor.datatype} values go in contents.{name}; got {given}",
            (tensor.name, "contents"),
        )
    values = getattr(tensor.contents, name)
    return np.fromiter(values, dtype=dtype, count=len(values))


def parameter(value: Any) -> pb.InferParameter:
    """A Python value as an InferParameter: bool, int64, double or string."""
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        return pb.InferParameter(int64_param=value)
    if isinstance(value, float):
        return pb.InferParameter(double_param=value)
    return pb.InferParameter(string_param=str(value))


def write_response(header: dict[str, Any], outputs: list[OutputTensor]) -> bytes:
    """The serialized ModelInferResponse: header fields, and each output's raw bytes.

    The message without its raw contents is serialized by protobuf; each output's bytes
    are then appended as a ``raw_output_contents`` field (its tag, its length, the
    array's own buffer), which parses as the same message. Through protobuf the
    probabilities of a large batch were copied three times (bytes, field, message) and
    the call took twice the CPU (bench/README.md, gRPC).
    """
    response = pb.ModelInferResponse(
        model_name=header["model_name"],
        model_version=header["model_version"],
        id=header.get("id", ""),
    )
    for key, value in header["parameters"].items():
        response.parameters[key].CopyFrom(parameter(value))
    parts: list[bytes | memoryview] = []
    for out in outputs:
        array = out.array
        response.outputs.add(name=out.name, datatype=datatype_of(array), shape=array.shape)
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        data = little.reshape(-1).view(np.uint8).data
        parts += [_RAW_OUTPUT_TAG, _varint(data.nbytes), data]
    return b"".join([response.SerializeToString(), *parts])


# raw_output_contents: field 6, length-delimited (wire type 2).
_RAW_OUTPUT_TAG = bytes([6 << 3 | 2])


def _varint(value: int) -> bytes:
    """``value`` as a protobuf varint: 7 bits a byte, low first, the high bit: more."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
