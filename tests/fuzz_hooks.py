"""schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.fuzz_hooks``): msgspec for msgpack bodies.

Responses are turned into what their JSON twin would be (bin -> base64, non-finite floats
-> "inf" / "-inf" / "nan") so that one schema validates both media types.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import msgspec
import schemathesis

_MSGPACK = ("application/msgpack", "application/x-msgpack", "application/vnd.msgpack")


def _fit(value: Any) -> Any:
    # msgpack has no integers past 64 bits: send the nearest float, as a client library would.
    if isinstance(value, dict):
        return {key: _fit(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fit(item) for item in value]
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return float(value)
    return value


@schemathesis.serializer(*_MSGPACK)
def _serialize(ctx: Any, value: Any) -> bytes:
    return msgspec.msgpack.encode(_fit(value))


def _as_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


@schemathesis.deserializer(*_MSGPACK)
def _deserialize(ctx: Any, response: Any) -> Any:
    return _as_json(msgspec.msgpack.decode(response.content))
