"""Content-Type and Accept tables: which codec, and when 415 / 406."""

from __future__ import annotations

import pytest

from app.codecs import (
    CODECS,
    JSON,
    MSGPACK,
    Codec,
    CodecError,
    NotAcceptable,
    UnsupportedMediaType,
    codec_for_accept,
    codec_for_content_type,
)


def test_registry():
    assert dict(CODECS) == {"application/json": JSON, "application/msgpack": MSGPACK}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, JSON, id="missing"),
        pytest.param("", JSON, id="empty"),
        pytest.param("  ", JSON, id="blank"),
        pytest.param("application/json", JSON, id="json"),
        pytest.param("application/json; charset=utf-8", JSON, id="json-charset"),
        pytest.param("Application/JSON;charset=UTF-8", JSON, id="json-case"),
        pytest.param("application/problem+json", JSON, id="problem-json"),
        pytest.param("application/vnd.api+json", JSON, id="json-suffix"),
        pytest.param("application/msgpack", MSGPACK, id="msgpack"),
        pytest.param("application/x-msgpack", MSGPACK, id="x-msgpack"),
        pytest.param("application/vnd.msgpack", MSGPACK, id="vnd-msgpack"),
        pytest.param("APPLICATION/MSGPACK ; foo=bar", MSGPACK, id="msgpack-case-params"),
    ],
)
def test_content_type(value: str | None, expected: Codec):
    assert codec_for_content_type(value) is expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/xml", id="xml"),
        pytest.param("application/*", id="range"),
        pytest.param("multipart/form-data; boundary=x", id="form"),
    ],
)
def test_unsupported_content_type(value: str):
    with pytest.raises(UnsupportedMediaType) as info:
        codec_for_content_type(value)
    assert info.value.value == value
    assert "application/json" in info.value.supported
    assert "application/msgpack" in info.value.supported
    assert value in str(info.value)
    assert not isinstance(info.value, CodecError)


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        pytest.param(None, MSGPACK, MSGPACK, id="missing"),
        pytest.param("", MSGPACK, MSGPACK, id="empty"),
        pytest.param("*/*", MSGPACK, MSGPACK, id="any-msgpack"),
        pytest.param("*/*", JSON, JSON, id="any-json"),
        pytest.param("*", MSGPACK, MSGPACK, id="bare-star"),
        pytest.param("application/*", MSGPACK, MSGPACK, id="app-range-default"),
        pytest.param("application/json", MSGPACK, JSON, id="json"),
        pytest.param("application/problem+json", MSGPACK, JSON, id="problem-json"),
        pytest.param("application/msgpack", JSON, MSGPACK, id="msgpack"),
        pytest.param("application/x-msgpack", JSON, MSGPACK, id="x-msgpack"),
        pytest.param("application/vnd.msgpack", JSON, MSGPACK, id="vnd-msgpack"),
        pytest.param("Application/MsgPack", JSON, MSGPACK, id="case"),
        pytest.param("text/html, application/msgpack", JSON, MSGPACK, id="skip-unknown"),
        pytest.param(
            "application/json;q=0.5, application/msgpack", JSON, MSGPACK, id="higher-q-wins"
        ),
        pytest.param(
            "application/json;q=0.9, application/msgpack;q=0.9", MSGPACK, MSGPACK, id="tie-default"
        ),
        pytest.param("application/json, application/msgpack", JSON, JSON, id="tie-default-json"),
        pytest.param("application/json;q=0, */*", JSON, MSGPACK, id="q0-excludes-json"),
        pytest.param("application/msgpack;q=0, application/*", MSGPACK, JSON, id="q0-range"),
        pytest.param("*/*;q=0.1, application/json;q=0.2", MSGPACK, JSON, id="specific-over-any"),
        pytest.param("*/*;q=0.5, application/msgpack;q=0.2", MSGPACK, JSON, id="specific-q-rules"),
        pytest.param(
            "application/json; charset=utf-8; q=0.3, application/msgpack; q=0.2",
            MSGPACK,
            JSON,
            id="params-before-q",
        ),
        pytest.param(
            "application/json;q=0.2, application/problem+json;q=0.8, application/msgpack;q=0.5",
            MSGPACK,
            JSON,
            id="best-of-json-names",
        ),
        pytest.param("application/json;q=1.0;foo=bar", MSGPACK, JSON, id="accept-ext"),
        pytest.param("application/json;q=abc", MSGPACK, MSGPACK, id="bad-q-only"),
        pytest.param("application/json;q=2, application/msgpack", JSON, MSGPACK, id="q-range"),
        pytest.param("garbage", JSON, JSON, id="malformed-only"),
        pytest.param(" , ", MSGPACK, MSGPACK, id="empty-items"),
    ],
)
def test_accept(value: str | None, default: Codec, expected: Codec):
    assert codec_for_accept(value, default) is expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("text/html", id="html"),
        pytest.param("application/xml, text/*", id="no-match"),
        pytest.param("application/json;q=0, application/msgpack;q=0", id="all-q0"),
        pytest.param("*/*;q=0", id="any-q0"),
        pytest.param("application/*;q=0", id="range-q0"),
    ],
)
def test_not_acceptable(value: str):
    with pytest.raises(NotAcceptable) as info:
        codec_for_accept(value, JSON)
    assert info.value.value == value
    assert "application/msgpack" in info.value.supported
    assert not isinstance(info.value, CodecError)
