"""msgpack bodies with typed binary tensors, as /v1 takes and returns them."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

__all__ = ["MEDIA_TYPE", "as_tensor", "decode", "encode", "from_tensor", "prepare"]

MEDIA_TYPE = "application/msgpack"
_FLOATS = ("float16", "float32", "float64")
_INTS = ("int32", "int64")
_encoder = msgspec.msgpack.Encoder()


def prepare(value: Any) -> NDArray[Any]:
    """An array the wire can carry: float16/32/64 and int32/64 as given, others widened."""
    array: NDArray[Any] = np.asarray(value)
    name = array.dtype.name
    if name in _FLOATS or name in _INTS:
        return array
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind in "fb":  # longdouble, bool: float64 is what the server computes in
        return array.astype(np.float64)
    raise TypeError(f"arrays must be numeric; got dtype {array.dtype}")


def as_tensor(array: NDArray[Any]) -> dict[str, Any]:
    """The typed tensor of ``array``: dtype, shape, little-endian C-order bytes."""
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": data.data.cast("B")}


def from_tensor(value: Any) -> NDArray[Any]:
    """A response array: a typed tensor, or nested lists."""
    if isinstance(value, dict):
        dtype = np.dtype(value["dtype"]).newbyteorder("<")
        return np.frombuffer(value["data"], dtype=dtype).reshape(value["shape"])
    return np.asarray(value, dtype=np.float64)


def encode(body: dict[str, Any]) -> bytes:
    """The msgpack request body."""
    return _encoder.encode(body)


def decode(content: bytes, media_type: str) -> Any:
    """A response body in either media type; None when it is neither."""
    try:
        if "json" in media_type:
            return json.loads(content)
        if "msgpack" in media_type:
            return msgspec.msgpack.decode(content)
    except (ValueError, msgspec.DecodeError):
        return None
    return None
