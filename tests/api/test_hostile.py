"""A corpus of hostile bodies against a live uvicorn: each is a 4xx naming the field, and
the worker stays up (same process, still answering) after all of them."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from tests.live_server import LiveServer, live_server

J, M = "application/json", "application/msgpack"
GOOD = {"logits": [[1.0, 2.0, 3.0]], "labels": [2]}
PACKED_GOOD = msgspec.msgpack.encode(GOOD)


def _json(**fields: Any) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


def _packed(**fields: Any) -> bytes:
    return msgspec.msgpack.encode({**GOOD, **fields})


def _tensor(dtype: str, shape: list[Any], data: bytes, json_body: bool = False) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "shape": shape,
        "data": base64.b64encode(data).decode() if json_body else data,
    }


# (body, media type, status, the field named first in loc; None when the body as a whole is bad)
CORPUS = [
    # Huge and tiny numbers.
    pytest.param(b'{"logits": [[1e400, 2]], "labels": [0]}', J, 422, "logits", id="float-overflow"),
    pytest.param(
        b'{"logits": [[1, 2]], "labels": [0], "temperature": 1e999}',
        J,
        422,
        "temperature",
        id="option-overflow",
    ),
    pytest.param(_json(labels=[2**70]), J, 422, "labels", id="int-over-int64"),
    pytest.param(_json(logits=[[1, 2, -(2**70)]]), J, 422, "logits", id="int-under-int64"),
    pytest.param(_json(temperature=1e-320), J, 422, "temperature", id="subnormal-temperature"),
    pytest.param(_json(label_smoothing=1e308), J, 422, "label_smoothing", id="huge-smoothing"),
    pytest.param(_json(ignore_index=1.5), J, 422, "ignore_index", id="float-ignore-index"),
    pytest.param(_packed(logits=[[float("nan"), 1.0, 2.0]]), M, 422, "logits", id="nan-msgpack"),
    pytest.param(_packed(logits=[[float("inf"), 1.0, 2.0]]), M, 422, "logits", id="inf-msgpack"),
    # Deep nesting.
    pytest.param(
        b'{"logits": ' + b"[" * 40 + b"1" + b"]" * 40 + b', "labels": [0]}',
        J,
        422,
        "logits",
        id="deep-array",
    ),
    pytest.param(
        b'{"logits": [[1, 2]], "labels": [0], "outputs": ' + b"[" * 100 + b"]" * 100 + b"}",
        J,
        422,
        "outputs",
        id="deep-option",
    ),
    pytest.param(
        b'{"logits": [[1, 2]], "labels": [0], "x": ' + b'{"a":' * 50 + b"1" + b"}" * 50 + b"}",
        J,
        422,
        "x",
        id="deep-objects",
    ),
    pytest.param(
        b"\x83\xa6logits\x91\x92\x01\x02\xa6labels\x91\x00\xa7outputs" + b"\x91" * 3000 + b"\xc0",
        M,
        422,
        None,
        id="deep-msgpack",
    ),
    # Wrong types.
    pytest.param(_json(logits="abc"), J, 422, "logits", id="logits-string"),
    pytest.param(_json(logits={"a": 1}), J, 422, "logits", id="logits-object"),
    pytest.param(_json(logits=[[1, None, 3]]), J, 422, "logits", id="null-element"),
    pytest.param(_json(logits=[[1, [2], 3]]), J, 422, "logits", id="mixed-depth"),
    pytest.param(_json(reduction=5), J, 422, "reduction", id="reduction-number"),
    pytest.param(_json(temperature="hot"), J, 422, "temperature", id="temperature-string"),
    pytest.param(_json(outputs="probs"), J, 422, "outputs", id="outputs-string"),
    pytest.param(_json(diagnostics="yes"), J, 422, "diagnostics", id="diagnostics-string"),
    pytest.param(_json(axis=1.5), J, 422, "axis", id="axis-float"),
    pytest.param(b"[1, 2, 3]", J, 400, None, id="top-level-array"),
    pytest.param(b'"logits"', J, 400, None, id="top-level-string"),
    pytest.param(b"\x93\x01\x02\x03", M, 400, None, id="top-level-msgpack-array"),
    pytest.param(b"\x81\x01\x02", M, 400, None, id="msgpack-int-key"),
    # Shape claims far larger than the data; negative and zero dimensions.
    pytest.param(
        _packed(logits=_tensor("float32", [10**6, 10**6], b"\0" * 8)),
        M,
        422,
        "logits",
        id="shape-claim-huge",
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [2**62, 2**62], b"\0" * 8)),
        M,
        422,
        "logits",
        id="shape-claim-overflow",
    ),
    pytest.param(
        _json(logits=_tensor("float64", [10**9, 3], b"\0" * 24, True)),
        J,
        422,
        "logits",
        id="shape-claim-json",
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [-1, 3], b"\0" * 12)), M, 422, "logits", id="negative-dim"
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [-2, -3], b"\0" * 24)),
        M,
        422,
        "logits",
        id="two-negative-dims",
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [0, 3], b""), labels=[]), M, 422, "logits", id="zero-rows"
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [1, 0], b"")), M, 422, "logits", id="zero-classes"
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [0, 2**63], b"")),
        M,
        422,
        "logits",
        id="zero-times-past-int64",
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [0, 2**62, 4], b"")),
        M,
        422,
        "logits",
        id="zero-times-past-intp",
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [1] * 70, b"\0" * 4)), M, 422, "logits", id="seventy-dims"
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [1.5, 2], b"\0" * 12)), M, 422, "logits", id="float-dim"
    ),
    # dtype / byte length mismatches.
    pytest.param(
        _packed(logits=_tensor("float64", [1, 3], b"\0" * 12)), M, 422, "logits", id="float64-short"
    ),
    pytest.param(
        _packed(logits=_tensor("float16", [1, 3], b"\0" * 12)), M, 422, "logits", id="float16-long"
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [1, 3], b"\0" * 13)), M, 422, "logits", id="odd-bytes"
    ),
    pytest.param(
        _packed(logits=_tensor("complex64", [1, 3], b"\0" * 24)),
        M,
        422,
        "logits",
        id="complex-dtype",
    ),
    pytest.param(
        _packed(logits=_tensor(">f4", [1, 3], b"\0" * 12)), M, 422, "logits", id="big-endian-dtype"
    ),
    pytest.param(
        _json(logits=_tensor("float32", [1, 3], b"\0" * 12, True) | {"data": "!!!"}),
        J,
        422,
        "logits",
        id="bad-base64",
    ),
    pytest.param(
        _packed(logits=_tensor("float32", [1, 3], b"\0" * 12) | {"extra": 1}),
        M,
        422,
        "logits",
        id="tensor-extra-key",
    ),
    # Truncated msgpack, invalid UTF-8, duplicate keys.
    pytest.param(PACKED_GOOD[:-1], M, 400, None, id="msgpack-truncated-1"),
    pytest.param(PACKED_GOOD[: len(PACKED_GOOD) // 2], M, 400, None, id="msgpack-truncated-half"),
    pytest.param(b"\xdf\xff\xff\xff\xff", M, 400, None, id="msgpack-map-claims-4g"),
    pytest.param(b"\x81\xa6logits\xdd\xff\xff\xff\xff", M, 400, None, id="msgpack-array-claims-4g"),
    pytest.param(
        b"\x81\xa6logits\xc6\xff\xff\xff\xff\x00", M, 400, None, id="msgpack-bin-claims-4g"
    ),
    pytest.param(
        b'{"logits": [[1, 2]], "labels": [0], "reduction": "\xff\xfe"}',
        J,
        400,
        "reduction",
        id="utf8-json-value",
    ),
    pytest.param(
        b"\x83\xa6logits\x91\x92\x01\x02\xa6labels\x91\x00\xa9reduction\xa2\xc3\x28",
        M,
        400,
        "reduction",
        id="utf8-msgpack-value",
    ),
    pytest.param(
        b'{"logits": [[1, 2]], "labels": [0], "\xff": 1}', J, 400, None, id="utf8-json-key"
    ),
    pytest.param(
        b'{"logits": [[1, 2]], "labels": [0], "labels": [1]}', J, 422, "labels", id="duplicate-json"
    ),
    pytest.param(
        b'{"logits": [[1, 2]], "reduction": "sum", "reduction": "none", "labels": [0]}',
        J,
        422,
        "reduction",
        id="duplicate-json-option",
    ),
    pytest.param(
        b"\x83\xa6labels\x91\x00\xa6logits\x91\x92\x01\x02\xa6labels\x91\x01",
        M,
        422,
        "labels",
        id="duplicate-msgpack",
    ),
    # Labels as floats and booleans.
    pytest.param(_json(labels=[2.0]), J, 422, "labels", id="labels-float-integral"),
    pytest.param(_json(labels=[1.5]), J, 422, "labels", id="labels-float"),
    pytest.param(_json(labels=[True]), J, 422, "labels", id="labels-bool"),
    pytest.param(_packed(labels=[False]), M, 422, "labels", id="labels-bool-msgpack"),
    pytest.param(
        _packed(labels=_tensor("float32", [1], b"\0" * 4)),
        M,
        422,
        "labels",
        id="labels-float-tensor",
    ),
    pytest.param(_json(labels=["nan"]), J, 422, "labels", id="labels-nan-string"),
    pytest.param(_json(labels=[-5]), J, 422, "labels", id="labels-negative"),
    # Odd bodies.
    pytest.param(b"", J, 400, None, id="empty"),
    pytest.param(b"\x00" * 64, J, 400, None, id="nul-bytes"),
    # Not JSON at all (an object key must be a string): malformed, whatever its depth.
    pytest.param(b"{" * 10000, J, 400, None, id="ten-thousand-braces"),
    pytest.param(b"\xc1", M, 400, None, id="msgpack-reserved-byte"),
    pytest.param(
        PACKED_GOOD[:1].replace(b"\x82", b"\x83")
        + PACKED_GOOD[1:]
        + b"\xa7metrics\x81\x81\x01\x01\x02",
        M,
        400,
        "metrics",
        id="msgpack-map-key-is-a-map",
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("hostile"), {"SCORER_ACCESS_LOG": "false"}) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(("content", "media", "status", "field"), CORPUS)
def test_hostile_body(
    http: httpx.Client, content: bytes, media: str, status: int, field: str | None
) -> None:
    response = http.post("/v1/cross-entropy", content=content, headers={"content-type": media})
    assert response.status_code == status, response.text
    problem = response.json() if "json" in response.headers["content-type"] else None
    if problem is None:
        problem = msgspec.msgpack.decode(response.content)
    assert problem["status"] == status
    loc = problem["errors"][0]["loc"]
    if field is not None:
        assert loc[:1] == [field], problem
        assert field in problem["detail"] or field in problem["errors"][0]["message"] or loc


# Invalid UTF-8 on every route, in both encodings: in an option's value, a nested key, a
# nested value, a top-level key. Each body is valid for its route but for those bytes.
_PLACEHOLDER = "@@BAD@@"
_V1_ROUTES = {
    "/v1/cross-entropy": GOOD,
    "/v1/binary-cross-entropy": {"logits": [0.5, -1.0], "labels": [1.0, 0.0]},
    "/v1/softmax": {"logits": [[1.0, 2.0, 3.0]]},
    "/v1/aggregates/merge": {"aggregates": []},
    "/v1/report": GOOD,
}
_PLACES = {
    "value": ({"reduction": _PLACEHOLDER}, "reduction"),
    "nested-key": ({"metrics": {_PLACEHOLDER: True}}, "metrics"),
    "nested-value": ({"outputs": [[_PLACEHOLDER]]}, "outputs"),
    "top-level-key": ({_PLACEHOLDER: 1}, None),
}


def _with_bad_bytes(body: dict[str, Any], media: str) -> bytes:
    if media == J:
        return json.dumps(body).encode().replace(_PLACEHOLDER.encode(), b"\xff\xfe")
    # Same length, so that the msgpack string's header still fits.
    return msgspec.msgpack.encode(body).replace(_PLACEHOLDER.encode(), b"\xff\xfe\xc3(\xa0\xff!")


@pytest.mark.parametrize("media", [J, M])
@pytest.mark.parametrize("place", list(_PLACES))
@pytest.mark.parametrize("route", list(_V1_ROUTES))
def test_invalid_utf8_on_every_route(http: httpx.Client, route: str, place: str, media: str):
    extra, field = _PLACES[place]
    content = _with_bad_bytes({**_V1_ROUTES[route], **extra}, media)
    response = http.post(route, content=content, headers={"content-type": media})
    assert response.status_code == 400, response.text
    problem = response.json() if media == J else msgspec.msgpack.decode(response.content)
    error = problem["errors"][0]
    assert "UTF-8" in error["message"], problem
    if field is not None:
        assert error["loc"][:1] == [field], problem
    if media == J:
        at = content.index(b"\xff")
        assert f"at byte {at}" in error["message"], problem


def _v2_body(**changes: Any) -> dict[str, Any]:
    logits = {"name": "logits", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
    labels = {"name": "labels", "shape": [1], "datatype": "INT64", "data": [2]}
    logits = {key: value for key, value in (logits | changes).items() if value is not None}
    return {"inputs": [logits, labels]}


V2_CASES = [
    pytest.param(
        _with_bad_bytes(_v2_body() | {"parameters": {"reduction": _PLACEHOLDER}}, J),
        {},
        400,
        "UTF-8 at byte",
        id="utf8-parameter",
    ),
    pytest.param(
        _with_bad_bytes(_v2_body() | {"parameters": {_PLACEHOLDER: 1}}, J),
        {},
        400,
        "UTF-8 at byte",
        id="utf8-key",
    ),
    pytest.param(
        _with_bad_bytes(_v2_body(data=[1, 2, _PLACEHOLDER]), J),
        {},
        400,
        "logits: invalid UTF-8 in data at byte 8",
        id="utf8-data",
    ),
    pytest.param(
        json.dumps(_v2_body(shape=[0, 2**63], data=[])).encode(),
        {},
        422,
        "logits: shape [0, 9223372036854775808]",
        id="zero-times-past-int64",
    ),
    pytest.param(
        json.dumps(
            _v2_body(shape=[0, 2**62, 4], data=None, parameters={"binary_data_size": 0})
        ).encode(),
        {},
        422,
        "logits: shape [0, 4611686018427387904, 4]",
        id="binary-zero-times-past-intp",
    ),
    pytest.param(
        json.dumps(_v2_body(shape=[10**200, 10**200], data=[])).encode(),
        {},
        413,
        "logits: over 2**1328 elements",
        id="shape-product-past-float64",
    ),
    pytest.param(
        json.dumps(_v2_body(shape=[10**200, 10**200, 0], data=[])).encode(),
        {},
        422,
        "logits: shape",
        id="zero-times-past-float64",
    ),
    pytest.param(
        json.dumps(_v2_body()).encode(),
        {"inference-header-content-length": "²".encode("latin-1")},
        400,
        "Inference-Header-Content-Length must be an integer",
        id="header-length-superscript-two",
    ),
    pytest.param(
        json.dumps(_v2_body()).encode(),
        {"inference-header-content-length": "9" * 5000},
        400,
        "Inference-Header-Content-Length must be an integer",
        id="header-length-5000-digits",
    ),
]


@pytest.mark.parametrize(("content", "headers", "status", "fragment"), V2_CASES)
def test_hostile_v2_body(
    http: httpx.Client, content: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    response = http.post(
        "/v2/models/cross-entropy/infer",
        content=content,
        headers={"content-type": "application/json", **headers},
    )
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"], response.text


def test_the_worker_survived(server: LiveServer, http: httpx.Client) -> None:
    pid = server.proc.pid
    assert server.proc.poll() is None
    assert http.post("/v1/cross-entropy", json=GOOD).status_code == 200
    assert server.proc.pid == pid
    assert "Traceback" not in server.stderr.read_text()
