"""The request pipeline: the headers it reads, and a large JSON body parsed as it arrives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import orjson
import pytest

from app.api import create_app
from app.api.pipeline import Head, read_head
from app.api.scoring import Endpoint
from app.api.v2.models import Model
from app.codecs import READ_AHEAD_BYTES, JsonCodec
from app.settings import Settings
from tests.live_server import live_server

CHUNK = 1 << 16


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        pytest.param(b"42", 42, id="digits"),
        pytest.param(b"007", 7, id="leading-zeros"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"-1", None, id="negative"),
        pytest.param(b" 42", None, id="space"),
        pytest.param("\u00b2".encode("latin-1"), None, id="superscript-two"),
        pytest.param("\u0664\u0662".encode(), None, id="arabic-indic-digits"),
    ],
)
def test_content_length_is_a_plain_decimal_or_none(length: bytes, expected: int | None) -> None:
    # Anything else is read as a body of unknown length, under max_body_bytes.
    head = read_head({"headers": [(b"content-length", length)]})
    assert head.content_length == expected


def test_the_first_of_a_repeated_header_counts() -> None:
    headers = [
        (b"content-type", b"application/msgpack"),
        (b"content-type", b"application/json"),
        (b"x-other", b"ignored"),
        (b"inference-header-content-length", b"12"),
    ]
    assert read_head({"headers": headers}) == Head(
        content_type="application/msgpack", inference_header_length="12"
    )


def _post(
    app: Any, body: bytes, chunk: int, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[int, bytes]:
    """POST /v1/cross-entropy straight into the ASGI app, the body ``chunk`` bytes a message."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/cross-entropy",
        "raw_path": b"/v1/cross-entropy",
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "state": {},
    }
    pieces = [body[at : at + chunk] for at in range(0, len(body), chunk)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every body the JSON codec's whole-body decoder is given."""
    sizes: list[int] = []
    decode = JsonCodec.decode

    def spy(self: JsonCodec, body: bytes, fields: frozenset[str]) -> Any:
        sizes.append(len(body))
        return decode(self, body, fields)

    monkeypatch.setattr(JsonCodec, "decode", spy)
    return sizes


def _large_body() -> bytes:
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((600, 1000)) * 3).astype(np.float32)
    labels = rng.integers(0, 1000, 600)
    content = {"logits": logits, "labels": labels, "outputs": ["per_sample"]}
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    assert len(body) >= READ_AHEAD_BYTES
    return body


def test_a_large_json_body_in_chunks_scores_as_in_one_piece(decoded_sizes: list[int]) -> None:
    body = _large_body()
    app = create_app(Settings())

    whole = _post(app, body, len(body))
    assert decoded_sizes == [len(body)]  # one message: nothing to read ahead of
    decoded_sizes.clear()

    chunked = _post(app, body, CHUNK)
    # The rows were parsed while the chunks came; the decoder saw the rest of the body.
    assert len(decoded_sizes) == 1
    assert decoded_sizes[0] < len(body) // 100
    assert chunked[0] == 200
    assert chunked == whole
    answer = orjson.loads(chunked[1])
    assert len(answer["per_sample"]) == 600


def test_identity_in_any_spelling_is_read_ahead(decoded_sizes: list[int]) -> None:
    # As inflate reads the header: the body is as sent, so its rows can be parsed early.
    body = _large_body()
    app = create_app(Settings())
    plain = _post(app, body, CHUNK)
    decoded_sizes.clear()
    identity = _post(app, body, CHUNK, ((b"content-encoding", b" Identity"),))
    assert len(decoded_sizes) == 1
    assert decoded_sizes[0] < len(body) // 100
    assert identity == plain


def test_a_bad_large_json_body_in_chunks_gets_the_same_error() -> None:
    rows = [[0.123456] * 1000 for _ in range(600)]
    rows[599][3] = "x"  # type: ignore[call-overload]
    body = orjson.dumps({"logits": rows, "labels": [0] * 600})
    assert len(body) >= READ_AHEAD_BYTES
    app = create_app(Settings())
    chunked = _post(app, body, CHUNK)
    assert chunked[0] == 422
    assert chunked == _post(app, body, len(body))
    assert b"logits" in chunked[1]


def test_a_large_json_body_through_uvicorn_scores_as_in_process(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((600, 1000)) * 3).astype(np.float32)
    labels = rng.integers(0, 1000, 600)
    content = {"outputs": ["per_sample", "probs"], "logits": logits, "labels": labels}
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    assert len(body) >= READ_AHEAD_BYTES
    status, expected = _post(create_app(Settings()), body, len(body))  # no read-ahead
    assert status == 200
    with live_server(tmp_path) as live:
        # The socket hands uvicorn the body in pieces: the rows are read as they come.
        answer = httpx.post(
            f"{live.url}/v1/cross-entropy",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
    assert answer.status_code == 200
    assert answer.content == expected


@pytest.mark.parametrize(
    ("path", "body", "owner"),
    [
        pytest.param(
            "/v1/cross-entropy",
            {"logits": [[1.0, 2.0, 3.0]], "labels": [2]},
            Endpoint,
            id="v1",
        ),
        pytest.param(
            "/v2/models/cross-entropy/infer",
            {
                "inputs": [
                    {"name": "logits", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                    {"name": "labels", "shape": [1], "datatype": "INT64", "data": [2]},
                ]
            },
            Model,
            id="v2",
        ),
    ],
)
def test_a_small_request_computed_past_its_deadline_is_504(
    monkeypatch: pytest.MonkeyPatch, path: str, body: dict[str, Any], owner: type
) -> None:
    # A small body is computed on the event loop, where the watchdog cannot interrupt it:
    # the deadline is checked again once the step returns, so its answer is not sent late.
    from fastapi.testclient import TestClient

    compute = owner.compute

    def late(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)
        return compute(*args, **kwargs)

    monkeypatch.setattr(owner, "compute", late)
    with TestClient(create_app(Settings(request_timeout_seconds=0.05))) as client:
        response = client.post(path, json=body)
    assert response.status_code == 504, response.text
    assert "0.05" in response.text
