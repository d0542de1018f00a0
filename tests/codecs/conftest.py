"""Shared helpers: both codecs as parameters, and bodies written without app.codecs."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.codecs import JSON, MSGPACK, Codec, CodecError

CODEC_PARAMS = [pytest.param(JSON, id="json"), pytest.param(MSGPACK, id="msgpack")]
ARRAY_FIELDS = frozenset({"logits", "labels", "probs", "class_weights", "pos_weight"})


def body_for(codec: Codec, content: Any) -> bytes:
    """Encode a request body with plain msgspec, as a client would."""
    if codec is JSON:
        return msgspec.json.encode(content)
    return msgspec.msgpack.encode(content)


def outcome(decode: Any, body: bytes) -> Any:
    """The decoded options and arrays (dtype, shape, bits), or the error's class, text, loc.

    Two decoders agree on a body when their outcomes are equal.
    """
    try:
        decoded = decode(body, ARRAY_FIELDS)
    except CodecError as exc:
        return type(exc), exc.message, exc.loc
    arrays = {
        name: (value.array.dtype, value.array.shape, value.array.tobytes(), value.tensor)
        for name, value in decoded.arrays.items()
    }
    return repr(decoded.options), arrays


@pytest.fixture(params=CODEC_PARAMS)
def codec(request: pytest.FixtureRequest) -> Codec:
    """Each codec in turn."""
    codec: Codec = request.param
    return codec
