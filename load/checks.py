"""Judging one response: the status, the body, and the numbers against the reference."""

from __future__ import annotations

import base64
import enum
from typing import Any

import msgspec
import numpy as np
import orjson
from numpy.typing import NDArray

from load.payloads import Payload

__all__ = ["Outcome", "judge"]


class Outcome(enum.Enum):
    """OK; ERROR: no usable answer (transport, status, body); WRONG: a wrong answer."""

    OK = "ok"
    ERROR = "error"
    WRONG = "wrong"


def _decode(content_type: str, body: bytes) -> Any:
    if "msgpack" in content_type:
        return msgspec.msgpack.decode(body)
    return orjson.loads(body)


def _array(value: Any) -> NDArray[np.float64]:
    """A JSON/msgpack array: nested lists or a typed tensor {dtype, shape, data}."""
    if isinstance(value, dict):
        data = value["data"]
        raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
        dtype = np.dtype(value["dtype"]).newbyteorder("<")
        return np.frombuffer(raw, dtype=dtype).reshape(value["shape"]).astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def judge(
    payload: Payload, status: int, content_type: str, body: bytes, *, full: bool
) -> tuple[Outcome, str]:
    """Check a response to ``payload``; ``full`` also compares every per-sample loss.

    Returns:
        The outcome and, unless OK, what was wrong with it.
    """
    if status != 200:
        return Outcome.ERROR, f"HTTP {status}: {body[:200]!r}"
    try:
        doc = _decode(content_type, body)
    except (msgspec.DecodeError, orjson.JSONDecodeError) as exc:
        return Outcome.ERROR, f"undecodable {content_type} body: {exc}"
    if not isinstance(doc, dict):
        return Outcome.WRONG, f"body is a {type(doc).__name__}, not an object"
    if doc.get("precision") != payload.precision:
        return Outcome.WRONG, f"precision {doc.get('precision')!r}, expected {payload.precision}"
    loss = doc.get("loss")
    want = payload.expected_loss
    if not isinstance(loss, int | float) or not np.isclose(
        loss, want, rtol=payload.rtol, atol=payload.atol
    ):
        return Outcome.WRONG, f"loss {loss!r}, expected {want!r}"
    if full:
        try:
            per_sample = _array(doc.get("per_sample"))
        except (KeyError, TypeError, ValueError) as exc:
            return Outcome.WRONG, f"per_sample unreadable: {exc}"
        expected = payload.expected_per_sample
        if per_sample.shape != expected.shape:
            return Outcome.WRONG, f"per_sample shape {per_sample.shape}, expected {expected.shape}"
        close = np.isclose(per_sample, expected, rtol=payload.rtol, atol=payload.atol)
        if not close.all():
            row = int(np.argmin(close))
            return (
                Outcome.WRONG,
                f"per_sample[{row}] = {per_sample[row]!r}, expected {expected[row]!r}",
            )
    return Outcome.OK, ""
