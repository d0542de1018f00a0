"""Open Inference Protocol tensors: the request header, JSON data, Triton's binary extension.

A request is a JSON header, optionally followed by the raw bytes of the inputs whose
``parameters`` carry ``binary_data_size`` (the header's length is then in the
``Inference-Header-Content-Length`` HTTP header). Responses mirror it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np

from app.codecs import (
    JSON,
    InvalidArray,
    MalformedBody,
    count_brackets,
    invalid_utf8,
    numeric_array,
    parse_document,
    read_numbers,
)

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "ONE_PASS_BYTES",
    "Flat",
    "InferInput",
    "InferRequest",
    "OutputTensor",
    "RequestedOutput",
    "datatype_of",
    "decode_input",
    "encode_response",
    "parse_once",
    "parse_request",
]

HEADER_LENGTH = "inference-header-content-length"
DATATYPES: dict[str, np.dtype[Any]] = {
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
}
# Keyed by dtype, not dtype.name: the name is built on every access.
_NAMES = {dtype: name for name, dtype in DATATYPES.items()}


class InferInput(msgspec.Struct, forbid_unknown_fields=True):
    """One input tensor of the header; ``data`` stays raw until its datatype is known."""

    name: str
    shape: list[Annotated[int, msgspec.Meta(ge=0)]]
    datatype: str
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    # Empty when absent (msgspec.Raw cannot be part of a union with None).
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class RequestedOutput(msgspec.Struct, forbid_unknown_fields=True):
    """An output asked for by name; ``parameters.binary_data`` picks its encoding."""

    name: str
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class InferRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The inference request header."""

    inputs: list[InferInput]
    id: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    outputs: list[RequestedOutput] | None = None


_decode_header = msgspec.json.Decoder(InferRequest).decode
_DIGITS = re.compile(r"[0-9]{1,19}")
# From this size a JSON body's data arrays are most of it, and msgspec's decode of the
# header still scans them: :func:`parse_once` reads header and data in one simdjson parse
# (bench/README.md, design decisions). Below it the two steps cost less.
ONE_PASS_BYTES = 16 << 10
Flat = np.ndarray[Any, np.dtype[Any]]


@dataclass(frozen=True)
class OutputTensor:
    """A response tensor: its name, values and whether it travels as binary data."""

    name: str
    array: np.ndarray[Any, np.dtype[Any]]
    binary: bool


def parse_request(body: bytes, header_length: str | None) -> tuple[InferRequest, list[bytes]]:
    """Split the body into the header and the binary blob of each input (b"" for JSON data)."""
    size = len(body)
    if header_length is not None:
        # ASCII digits only: str.isdigit() and int() also take '²' and other scripts' digits.
        if _DIGITS.fullmatch(header_length) is None or int(header_length) > size:
            raise MalformedBody(
                f"Inference-Header-Content-Length must be an integer in [0, {size}]; "
                f"got {header_length!r}"
            )
        size = int(header_length)
    try:
        request = _decode_header(body[:size])
    except msgspec.ValidationError as exc:
        raise MalformedBody(f"invalid inference request: {exc}") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec says "invalid UTF-8" without where; the header is JSON, so UTF-8 throughout.
        where = invalid_utf8(body[:size])
        why = f"invalid UTF-8 {where}" if where is not None else str(exc)
        raise MalformedBody(f"the inference request header is not JSON: {why}") from exc
    blobs: list[bytes] = []
    offset = size
    for tensor in request.inputs:
        length = tensor.parameters.get("binary_data_size")
        if length is None:
            blobs.append(b"")
            continue
        if type(length) is not int or length < 0 or offset + length > len(body):
            raise MalformedBody(
                f"input {tensor.name!r}: binary_data_size {length!r} does not fit the "
                f"{len(body) - offset} bytes left after the header"
            )
        blobs.append(body[offset : offset + length])
        offset += length
    if offset != len(body):
        raise MalformedBody(
            f"{len(body) - offset} bytes after the header and binary inputs are unaccounted for"
        )
    return request, blobs


def parse_once(body: bytes) -> tuple[InferRequest, list[Flat]] | None:
    """The header and each input's data as numbers, from one simdjson parse; else None.

    Only for a plain body: every input's ``data`` a rectangular array of numbers, no
    ``binary_data_size``, no key given twice, no ``[`` in a string, and a header msgspec
    accepts. Anything else is None, and :func:`parse_request` decodes the body and words
    any error, so both ways give the same answers.
    """
    if body.startswith(b"\xef\xbb\xbf"):
        return None  # simdjson skips a byte-order mark, msgspec refuses it: as msgspec does
    try:
        return parse_document(body, lambda document: _read_once(document, body))
    except Exception:
        # Whatever the one pass did not foresee (nesting past Python's limit, a field of
        # an unexpected type): the exact path decides, and words any error.
        return None


def _read_once(document: Any, body: bytes) -> tuple[InferRequest, list[Flat]] | None:
    names = list(document)
    if len(set(names)) != len(names) or "inputs" not in names:
        return None
    inputs = document["inputs"]
    if not hasattr(inputs, "as_list"):  # not an array
        return None
    header: dict[str, Any] = {name: _plain(document[name]) for name in names if name != "inputs"}
    described: list[dict[str, Any]] = []
    values: list[Flat] = []
    opened = 1 + _lists(header)  # the inputs array itself, and the header's lists
    for tensor in inputs:
        keys = list(tensor) if hasattr(tensor, "keys") else None
        if keys is None or len(set(keys)) != len(keys) or "data" not in keys:
            return None
        found = numeric_array(tensor["data"])
        if found is None:
            return None
        fields = {key: _plain(tensor[key]) for key in keys if key != "data"}
        parameters = fields.get("parameters")
        if parameters is not None and (
            not isinstance(parameters, dict) or "binary_data_size" in parameters
        ):
            return None
        described.append(fields)
        values.append(found[0].reshape(-1))
        opened += found[1] + _lists(fields)
    if _strings_open(header) or any(_strings_open(fields) for fields in described):
        return None  # a '[' in a string would make the count below meaningless
    if count_brackets(body) != opened:
        return None  # an array where a number should be
    try:
        request = msgspec.convert({**header, "inputs": described}, InferRequest)
    except msgspec.ValidationError:
        return None
    return request, values


def _plain(value: Any) -> Any:
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "as_list"):
        return value.as_list()
    return value


def _lists(value: Any) -> int:
    if isinstance(value, list):
        return 1 + sum(_lists(item) for item in value)
    if isinstance(value, dict):
        return sum(_lists(item) for item in value.values())
    return 0


def _strings_open(value: Any) -> bool:
    if isinstance(value, str):
        return "[" in value
    if isinstance(value, list):
        return any(_strings_open(item) for item in value)
    if isinstance(value, dict):
        return any("[" in key or _strings_open(item) for key, item in value.items())
    return False


def decode_input(
    tensor: InferInput, blob: bytes, values: Flat | None = None
) -> np.ndarray[Any, np.dtype[Any]]:
    """The input as a NumPy array of its datatype and shape.

    ``values``: its ``data`` already read as numbers (:func:`parse_once`).
    """
    dtype = DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise InvalidArray(
            f"{tensor.name}: unsupported datatype {tensor.datatype!r}; "
            f"expected one of {', '.join(DATATYPES)}",
            (tensor.name, "datatype"),
        )
    count = math.prod(tensor.shape)
    if "binary_data_size" in tensor.parameters:
        if tensor.data:
            raise InvalidArray(f"{tensor.name}: both data and binary_data_size", (tensor.name,))
        if len(blob) != count * dtype.itemsize:
            raise InvalidArray(
                f"{tensor.name}: got {len(blob)} bytes, but shape {tensor.shape} of "
                f"{tensor.datatype} needs {count * dtype.itemsize}",
                (tensor.name, "binary_data_size"),
            )
        return _shaped(np.frombuffer(blob, dtype=dtype), tensor)
    if values is None:
        if not tensor.data:
            raise InvalidArray(f"{tensor.name}: no data and no binary_data_size", (tensor.name,))
        # A rectangular array of numbers: the v1 codec's own bulk reader, on data in place.
        values = read_numbers(memoryview(tensor.data))
    if values is None:
        values = _decoded_data(tensor)
    values = values.reshape(-1)
    if values.size != count:
        raise InvalidArray(
            f"{tensor.name}: shape {tensor.shape} needs {count} values; got {values.size}",
            (tensor.name, "data"),
        )
    return _shaped(_cast(values, dtype, tensor), tensor)


def _decoded_data(tensor: InferInput) -> np.ndarray[Any, np.dtype[Any]]:
    """Any other ``data`` through the whole v1 JSON codec."""
    # The v1 JSON codec decodes nested or flat lists with exact error locations and
    # the "inf"/"-inf"/"nan" strings; the name is a known input name, so safe to splice.
    wrapped = b'{"' + tensor.name.encode() + b'":' + bytes(tensor.data) + b"}"
    try:
        decoded = JSON.decode(wrapped, frozenset({tensor.name})).arrays.get(tensor.name)
    except MalformedBody as exc:
        # The codec's byte offset would count from the wrapper; count from data instead.
        where = invalid_utf8(bytes(tensor.data))
        if where is None:
            raise
        message = f"{tensor.name}: invalid UTF-8 in data {where}"
        raise MalformedBody(message, (tensor.name, "data")) from exc
    if decoded is None:
        raise InvalidArray(f"{tensor.name}: data is null", (tensor.name, "data"))
    return decoded.array


def _shaped(
    values: np.ndarray[Any, np.dtype[Any]], tensor: InferInput
) -> np.ndarray[Any, np.dtype[Any]]:
    # The element count already matches, but an empty array can still claim a shape NumPy
    # cannot make ([0, 2**63]: a dimension past intp, or nonzero ones whose product is).
    try:
        return values.reshape(tensor.shape)
    except ValueError as exc:
        raise InvalidArray(
            f"{tensor.name}: shape {tensor.shape} is not a possible array: {exc}",
            (tensor.name, "shape"),
        ) from exc


def _cast(
    values: np.ndarray[Any, np.dtype[Any]], dtype: np.dtype[Any], tensor: InferInput
) -> np.ndarray[Any, np.dtype[Any]]:
    if dtype.kind == "f":
        return values.astype(dtype)
    if values.size and values.dtype.kind != "i":
        raise InvalidArray(
            f"{tensor.name}: {tensor.datatype} data must be integers", (tensor.name, "data")
        )
    info = np.iinfo(dtype)
    if values.size and (values.min() < info.min or values.max() > info.max):
        raise InvalidArray(
            f"{tensor.name}: a value is out of the {tensor.datatype} range", (tensor.name, "data")
        )
    return values.astype(dtype)


def datatype_of(array: np.ndarray[Any, np.dtype[Any]]) -> str:
    """The protocol's name for the array's dtype."""
    name = _NAMES.get(array.dtype)  # any byte order: the encoder writes little-endian
    return name if name is not None else _NAMES[array.dtype.newbyteorder("<")]


def encode_response(
    header: dict[str, Any], outputs: list[OutputTensor]
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length."""
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for out in outputs:
        tensor: dict[str, Any] = {
            "name": out.name,
            "datatype": datatype_of(out.array),
            "shape": list(out.array.shape),
        }
        if out.binary:
            data = np.ascontiguousarray(out.array, dtype=out.array.dtype.newbyteorder("<"))
            blobs.append(data.tobytes())
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            # The JSON codec writes non-finite floats as "inf", "-inf", "nan", as /v1 does.
            tensor["data"] = out.array.reshape(-1)
        described.append(tensor)
    encoded = JSON.encode({**header, "outputs": described})
    if not blobs:
        return encoded, None
    return b"".join([encoded, *blobs]), len(encoded)
