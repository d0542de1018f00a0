"""Seeded request bodies shared by the codec and HTTP benchmarks."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import numpy as np
import orjson


def arrays(
    shape: tuple[int, int], seed: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """float32 logits of ``shape`` (standard normal x 3) and int64 labels."""
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal(shape) * 3).astype(np.float32)
    labels = rng.integers(0, shape[1], shape[0])
    return logits, labels


def _tensor(array: np.ndarray[Any, Any], binary: bool) -> dict[str, Any]:
    data = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return {
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "data": data if binary else base64.b64encode(data).decode("ascii"),
    }


def body(
    shape: tuple[int, int],
    encoding: str,
    tensor: bool = False,
    outputs: tuple[str, ...] = ("per_sample",),
) -> bytes:
    """A /v1/cross-entropy request body.

    ``encoding`` is "json" or "msgpack". Nested lists carry float32 values, which orjson
    writes in their shortest round-trip form (as a client serialising float32 would);
    ``tensor`` sends logits and labels as typed tensors instead.
    """
    logits, labels = arrays(shape)
    binary = encoding == "msgpack"
    content: dict[str, Any] = {"outputs": list(outputs)}
    if tensor:
        content["logits"] = _tensor(logits, binary)
        content["labels"] = _tensor(labels, binary)
    elif binary:
        content["logits"] = logits.tolist()  # float64 doubles of the float32 values
        content["labels"] = labels.tolist()
    else:
        content["logits"] = logits
        content["labels"] = labels
    if binary:
        return msgspec.msgpack.encode(content)
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


MEDIA_TYPES = {"json": "application/json", "msgpack": "application/msgpack"}
