"""Test-side encoding of requests and decoding of responses, independent of app.codecs."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import numpy as np

NON_FINITE = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}


def tensor(array: np.ndarray, *, json_body: bool) -> dict[str, Any]:
    """A typed tensor of ``array`` as the wire format has it."""
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return {
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "data": base64.b64encode(data).decode() if json_body else data,
    }


def encode(body: dict[str, Any], encoding: str) -> tuple[bytes, str]:
    """Body bytes and Content-Type for ``encoding`` in {json, msgpack}."""
    if encoding == "json":
        return json.dumps(body).encode(), "application/json"
    return msgspec.msgpack.encode(body), "application/msgpack"


def decode(content: bytes, media_type: str) -> Any:
    """A response body as plain Python, whatever its media type."""
    if "json" in media_type:
        return json.loads(content)
    return msgspec.msgpack.decode(content)


def as_array(value: Any) -> np.ndarray:
    """An array field of a response (nested lists with non-finite strings, or a tensor)."""
    if isinstance(value, dict):
        data = value["data"]
        raw = base64.b64decode(data) if isinstance(data, str) else data
        return np.frombuffer(raw, dtype=np.dtype(value["dtype"]).newbyteorder("<")).reshape(
            value["shape"]
        )
    return np.array(_finite(value), dtype=np.float64)


def as_float(value: Any) -> float:
    """A scalar field of a response ('inf' strings in JSON)."""
    return float(NON_FINITE.get(value, value)) if isinstance(value, str) else float(value)


def _finite(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return NON_FINITE.get(value, value) if isinstance(value, str) else value
