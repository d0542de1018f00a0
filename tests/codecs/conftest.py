"""Shared helpers: both codecs as parameters, and bodies written without app.codecs."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.codecs import JSON, MSGPACK, Codec

CODEC_PARAMS = [pytest.param(JSON, id="json"), pytest.param(MSGPACK, id="msgpack")]
ARRAY_FIELDS = frozenset({"logits", "labels", "probs", "class_weights", "pos_weight"})


def body_for(codec: Codec, content: Any) -> bytes:
    """Encode a request body with plain msgspec, as a client would."""
    if codec is JSON:
        return msgspec.json.encode(content)
    return msgspec.msgpack.encode(content)


@pytest.fixture(params=CODEC_PARAMS)
def codec(request: pytest.FixtureRequest) -> Codec:
    """Each codec in turn."""
    codec: Codec = request.param
    return codec
