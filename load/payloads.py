"""Seeded request bodies for the load test, each with the answer it must get."""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import numpy as np
import orjson
from numpy.typing import NDArray

from load.reference import cross_entropy

__all__ = ["JSON", "KINDS", "MSGPACK", "Kind", "Payload", "build_payloads"]

JSON = "application/json"
MSGPACK = "application/msgpack"


@dataclass(frozen=True)
class Kind:
    """One shape of request: size, encoding and how the arrays are written."""

    name: str
    rows: int
    classes: int
    media_type: str
    layout: Literal["lists", "tensor"]
    dtype: Literal["float32", "float64"]
    description: str


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("small-json", 64, 10, JSON, "lists", "float64", "[64, 10] JSON lists"),
        Kind("small-msgpack", 64, 10, MSGPACK, "lists", "float64", "[64, 10] msgpack lists"),
        Kind("medium-json", 512, 1000, JSON, "lists", "float64", "[512, 1000] JSON lists"),
        Kind(
            "medium-b64",
            512,
            1000,
            JSON,
            "tensor",
            "float32",
            "[512, 1000] JSON, float32 tensor in base64",
        ),
        Kind(
            "large",
            4096,
            1000,
            MSGPACK,
            "tensor",
            "float32",
            "[4096, 1000] msgpack, float32 binary tensor",
        ),
    )
}


@dataclass(frozen=True)
class Payload:
    """A ready-to-send body and the float64 reference answer for it."""

    kind: Kind
    body: bytes
    logits_nbytes: int
    expected_loss: float
    expected_per_sample: NDArray[np.float64]
    precision: str
    rtol: float
    atol: float


def _tensor(array: NDArray[Any], media_type: str) -> dict[str, Any]:
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return {
        "dtype": array.dtype.name,
        "shape": list(array.shape),
        "data": data if media_type == MSGPACK else base64.b64encode(data).decode("ascii"),
    }


def _encode(kind: Kind, logits: NDArray[Any], labels: NDArray[np.int64]) -> bytes:
    doc: dict[str, Any] = {"reduction": "mean", "outputs": ["per_sample"]}
    if kind.layout == "tensor":
        # int64 labels in msgpack, int32 in JSON: both label dtypes get exercised.
        label_dtype = np.int64 if kind.media_type == MSGPACK else np.int32
        doc["logits"] = _tensor(logits, kind.media_type)
        doc["labels"] = _tensor(labels.astype(label_dtype), kind.media_type)
    else:
        doc["logits"] = logits.tolist()
        doc["labels"] = labels.tolist()
    if kind.media_type == MSGPACK:
        return msgspec.msgpack.encode(doc)
    return orjson.dumps(doc)


def build_payloads(kind: Kind, seed: int, variants: int) -> list[Payload]:
    """``variants`` distinct bodies of ``kind``, the same for the same ``seed``."""
    rng = np.random.default_rng([seed, zlib.crc32(kind.name.encode())])
    payloads = []
    for _ in range(variants):
        # Spread logits (scale 4) so that probabilities span many orders of magnitude.
        logits = (4.0 * rng.standard_normal((kind.rows, kind.classes))).astype(kind.dtype)
        labels = rng.integers(0, kind.classes, size=kind.rows, dtype=np.int64)
        per_sample, lse = cross_entropy(logits, labels)
        # The service computes float32 tensors in float32: compare at float32's accuracy;
        # the absolute term covers the cancellation in lse - x[y] for small losses.
        rtol = 1e-6 if kind.dtype == "float32" else 1e-9
        eps = float(np.finfo(kind.dtype).eps)
        payloads.append(
            Payload(
                kind=kind,
                body=_encode(kind, logits, labels),
                logits_nbytes=logits.nbytes,
                expected_loss=float(per_sample.mean()),
                expected_per_sample=per_sample,
                precision=kind.dtype,
                rtol=rtol,
                atol=8 * eps * float(np.abs(lse).max()),
            )
        )
    return payloads
