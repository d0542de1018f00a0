"""Test-side Open Inference Protocol requests and responses, independent of app.api.v2."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

DATATYPES = {"float16": "FP16", "float32": "FP32", "float64": "FP64", "int32": "INT32"}
DATATYPES["int64"] = "INT64"
NUMPY = {name: np.dtype(dtype).newbyteorder("<") for dtype, name in DATATYPES.items()}
NON_FINITE = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}


def request(
    inputs: dict[str, np.ndarray],
    *,
    binary: bool = False,
    outputs: list[str] | None = None,
    binary_outputs: bool | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of an infer request; binary puts every input after the header."""
    tensors, blobs = [], []
    for name, array in inputs.items():
        tensor: dict[str, Any] = {
            "name": name,
            "shape": list(array.shape),
            "datatype": DATATYPES[array.dtype.name],
        }
        if binary:
            blobs.append(np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            tensor["data"] = [_json_value(v) for v in array.reshape(-1).tolist()]
        tensors.append(tensor)
    header: dict[str, Any] = {"inputs": tensors}
    if outputs is not None:
        header["outputs"] = [
            {
                "name": name,
                **(
                    {}
                    if binary_outputs is None
                    else {"parameters": {"binary_data": binary_outputs}}
                ),
            }
            for name in outputs
        ]
    if parameters:
        header["parameters"] = parameters
    encoded = json.dumps(header).encode()
    if not binary:
        return encoded, {"content-type": "application/json"}
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(encoded)),
    }
    return encoded + b"".join(blobs), headers


def outputs(
    content: bytes, header_length: str | None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The response header and its outputs as arrays, JSON or binary."""
    size = int(header_length) if header_length is not None else len(content)
    header = json.loads(content[:size])
    arrays, offset = {}, size
    for out in header["outputs"]:
        dtype = NUMPY[out["datatype"]]
        params = out.get("parameters") or {}
        if "binary_data_size" in params:
            n = params["binary_data_size"]
            arrays[out["name"]] = np.frombuffer(content[offset : offset + n], dtype).reshape(
                out["shape"]
            )
            offset += n
        else:
            values = [NON_FINITE.get(v, v) if isinstance(v, str) else v for v in out["data"]]
            arrays[out["name"]] = np.array(values, dtype=dtype).reshape(out["shape"])
    assert offset == len(content)
    return header, arrays


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
