"""The body as a whole: top-level object, options as plain Python, malformed input."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from app.codecs import JSON, MSGPACK, Codec, InvalidArray, MalformedBody
from tests.codecs.conftest import ARRAY_FIELDS, body_for


def test_options_stay_plain_python(codec: Codec):
    options = {
        "reduction": "mean",
        "label_smoothing": 0.1,
        "ignore_index": -100,
        "return": ["loss", "probs"],
        "extra": {"nested": [1, None, True]},
        "flag": False,
    }
    decoded = codec.decode(body_for(codec, {**options, "labels": [1, 2]}), ARRAY_FIELDS)
    assert decoded.options == options
    assert set(decoded.arrays) == {"labels"}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param([1, 2], id="array"),
        pytest.param("text", id="string"),
        pytest.param(3, id="number"),
        pytest.param(None, id="null"),
    ],
)
def test_top_level_must_be_an_object(codec: Codec, content: Any):
    with pytest.raises(MalformedBody, match="must be an object") as info:
        codec.decode(body_for(codec, content), ARRAY_FIELDS)
    assert info.value.loc == ()


def test_empty_body(codec: Codec):
    with pytest.raises(MalformedBody, match="empty"):
        codec.decode(b"", ARRAY_FIELDS)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b'{"logits": [1, 2', "truncated", id="truncated"),
        pytest.param(b'{"logits": tru}', r"\(byte 12\)", id="bad-literal"),
        pytest.param(b'{"a": 1} x', "trailing characters", id="trailing"),
        pytest.param(b'{"logits": [NaN]}', "malformed", id="nan-literal"),
    ],
)
def test_json_syntax_errors(body: bytes, message: str):
    with pytest.raises(MalformedBody, match=message) as info:
        JSON.decode(body, ARRAY_FIELDS)
    assert isinstance(info.value.__cause__, msgspec.DecodeError)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"reduction": "\xff"}', id="in-option"),
        pytest.param(b'{"\xff": 1}', id="in-key"),
        pytest.param(b'{"logits": ["\xff"]}', id="in-array"),
    ],
)
def test_json_invalid_utf8(body: bytes):
    with pytest.raises(MalformedBody, match="invalid UTF-8 in a JSON string"):
        JSON.decode(body, ARRAY_FIELDS)


def test_msgpack_truncated():
    body = msgspec.msgpack.encode({"logits": [1.0, 2.0]})[:-3]
    with pytest.raises(MalformedBody, match="truncated"):
        MSGPACK.decode(body, ARRAY_FIELDS)


def test_msgpack_invalid_opcode():
    with pytest.raises(MalformedBody, match="invalid opcode"):
        MSGPACK.decode(b"\x81\xa1a\xc1", ARRAY_FIELDS)


def test_msgpack_keys_must_be_strings():
    with pytest.raises(MalformedBody, match="string keys"):
        MSGPACK.decode(msgspec.msgpack.encode({1: 2}), ARRAY_FIELDS)


def test_msgpack_invalid_utf8():
    with pytest.raises(MalformedBody, match="UTF-8"):
        MSGPACK.decode(b"\x81\xa1a\xa1\xff", ARRAY_FIELDS)


def test_duplicate_keys_are_refused(codec: Codec):
    # msgspec would keep the last value silently; a body that says two things is refused.
    body = b'{"a": 1, "a": 2}' if codec is JSON else b"\x82\xa1a\x01\xa1a\x02"
    with pytest.raises(InvalidArray, match="given more than once") as info:
        codec.decode(body, ARRAY_FIELDS)
    assert info.value.loc == ("a",)
