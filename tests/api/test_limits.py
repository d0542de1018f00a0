"""Every request limit against a live uvicorn: size, inflation, elements, rank, depth,
byte length, requests in flight, the deadline; and peak memory for a large request."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.api.errors import BodyTooLarge
from app.api.pipeline import Limits, _nesting, read_body, run_sized
from app.settings import Settings
from tests.api.wire import encode, tensor
from tests.live_server import LiveServer, live_server

GOOD = {"logits": [[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]], "labels": [2, 0]}
LIMITS = {
    "SCORER_MAX_BODY_BYTES": "20000",
    "SCORER_MAX_DECOMPRESSED_BYTES": "50000",
    "SCORER_MAX_ELEMENTS": "1000",
    "SCORER_MAX_RANK": "3",
    "SCORER_MAX_JSON_DEPTH": "8",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("limits"), LIMITS) as live:
        yield live
        assert live.alive()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _post(http: httpx.Client, content: bytes, media: str = "application/json", **headers: str):
    return http.post(
        "/v1/cross-entropy", content=content, headers={"content-type": media, **headers}
    )


def _problem(response: httpx.Response, status: int, loc: list[Any] | None = None) -> Any:
    assert response.status_code == status, response.text
    problem = response.json() if "json" in response.headers["content-type"] else None
    if problem is None:
        problem = msgspec.msgpack.decode(response.content)
    assert problem["status"] == status
    if loc is not None:
        assert problem["errors"][0]["loc"] == loc, problem
    return problem


def test_body_over_limit_by_content_length(http: httpx.Client) -> None:
    body = encode({**GOOD, "pad": "x" * 30000}, "json")[0]
    problem = _problem(_post(http, body), 413)
    assert "20000" in problem["detail"]


def test_chunked_body_over_limit(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"logits": [[1.0, 2.0]], "labels": [0], "pad": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    response = http.post(
        "/v1/cross-entropy", content=chunks(), headers={"content-type": "application/json"}
    )
    _problem(response, 413)


@pytest.mark.parametrize(
    "coding",
    [
        pytest.param("gzip", id="gzip"),
        pytest.param("deflate", id="deflate-zlib"),
        pytest.param("raw-deflate", id="deflate-raw"),
    ],
)
def test_compressed_bodies_are_scored(http: httpx.Client, coding: str) -> None:
    body = encode(GOOD, "json")[0]
    if coding == "gzip":
        packed = gzip.compress(body)
    elif coding == "deflate":
        packed = zlib.compress(body)
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = packer.compress(body) + packer.flush()
    header = "deflate" if coding == "raw-deflate" else coding
    plain = _post(http, body)
    response = _post(http, packed, **{"content-encoding": header})
    assert response.status_code == 200, response.text
    assert response.json()["loss"] == plain.json()["loss"]


def test_zip_bomb_is_413_not_an_oom(http: httpx.Client, server: LiveServer) -> None:
    # 100 MB of zeros gzip to about 100 kB: under neither limit compressed, far over inflated.
    bomb = gzip.compress(b"0" * 1_000_000, compresslevel=9)
    assert len(bomb) < 20000
    problem = _problem(_post(http, bomb, **{"content-encoding": "gzip"}), 413)
    assert problem["errors"][0]["type"] == "decompressed_too_large"
    assert "50000" in problem["detail"]
    assert server.alive()


def test_corrupt_gzip_is_400(http: httpx.Client) -> None:
    packed = gzip.compress(encode(GOOD, "json")[0])
    _problem(_post(http, packed[: len(packed) // 2], **{"content-encoding": "gzip"}), 400)
    _problem(_post(http, b"not gzip at all", **{"content-encoding": "gzip"}), 400)


def test_unknown_content_encoding_is_415(http: httpx.Client) -> None:
    _problem(_post(http, b"...", **{"content-encoding": "br"}), 415)


@pytest.mark.parametrize("encoding", [pytest.param("json"), pytest.param("msgpack")])
def test_too_many_elements_is_413(http: httpx.Client, encoding: str) -> None:
    logits = np.zeros((100, 11))  # 1100 > 1000
    body = {"logits": tensor(logits, json_body=encoding == "json"), "labels": [0] * 100}
    content, media = encode(body, encoding)
    problem = _problem(_post(http, content, media), 413, ["logits"])
    assert "1100 elements" in problem["detail"]


def test_rank_over_limit_is_422(http: httpx.Client) -> None:
    body = {"logits": np.zeros((1, 1, 1, 3)).tolist(), "labels": [[[0]]]}
    problem = _problem(_post(http, encode(body, "json")[0]), 422, ["logits"])
    assert "4 dimensions" in problem["detail"]


def test_json_depth_names_the_field(http: httpx.Client) -> None:
    deep = b"[" * 9 + b"1" + b"]" * 9
    body = b'{"labels": [0], "logits": ' + deep + b"}"
    _problem(_post(http, body), 422, ["logits"])
    body = b'{"logits": [[1.0, 2.0]], "labels": [0], "reduction": ' + deep + b"}"
    _problem(_post(http, body), 422, ["reduction"])


def test_depth_is_checked_before_size_whichever_field_comes_first(http: httpx.Client) -> None:
    # logits is too large (413) and comes first; labels is too deep (422): depth wins.
    big = np.zeros((100, 11)).tolist()
    deep = b"[" * 9 + b"0" + b"]" * 9
    body = b'{"logits": ' + json.dumps(big).encode() + b', "labels": ' + deep + b"}"
    _problem(_post(http, body), 422, ["labels"])


@pytest.mark.parametrize("encoding", [pytest.param("json"), pytest.param("msgpack")])
def test_nesting_past_the_decoder_is_422(http: httpx.Client, encoding: str) -> None:
    depth = 5000
    if encoding == "json":
        content = b'{"reduction": ' + b"[" * depth + b"]" * depth + b"}"
        media = "application/json"
    else:
        content = b"\x81\xa9reduction" + b"\x91" * depth + b"\xc0"
        media = "application/msgpack"
    _problem(_post(http, content, media), 422)


def test_tensor_byte_length_mismatch_is_422(http: httpx.Client) -> None:
    body = {"logits": tensor(np.zeros((2, 3), np.float32), json_body=False), "labels": [0, 1]}
    body["logits"]["data"] = body["logits"]["data"][:-4]
    content, media = encode(body, "msgpack")
    problem = _problem(_post(http, content, media), 422, ["logits", "data"])
    assert "20 bytes" in problem["detail"]


# In flight and deadline: one slot and a 1 s deadline; a slow upload holds no slot.


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"SCORER_MAX_IN_FLIGHT": "1", "SCORER_REQUEST_TIMEOUT_SECONDS": "1"}
    with live_server(tmp_path_factory.mktemp("narrow"), env) as live:
        yield live


def test_a_slow_upload_holds_no_slot_and_meets_the_deadline(narrow: LiveServer) -> None:
    def slow_body() -> Iterator[bytes]:
        yield b'{"logits": [[1.0, 2.0]], "labels": [0], "pad": "'
        for _ in range(30):
            time.sleep(0.1)
            yield b"x" * 10
        yield b'"}'

    outcome: dict[str, httpx.Response] = {}

    def upload() -> None:
        with httpx.Client(base_url=narrow.url, timeout=30) as client:
            outcome["slow"] = client.post(
                "/v1/cross-entropy",
                content=slow_body(),
                headers={"content-type": "application/json"},
            )

    worker = threading.Thread(target=upload)
    worker.start()
    time.sleep(0.4)
    with httpx.Client(base_url=narrow.url, timeout=30) as http:
        # The only slot is free while the upload trickles: it counts work, not waiting.
        assert http.post("/v1/cross-entropy", json=GOOD).status_code == 200
        assert http.get("/readyz").status_code == 200
        gauge = [
            x for x in http.get("/metrics").text.splitlines() if x.startswith("scorer_requests_in")
        ]
        assert gauge == ["scorer_requests_in_flight 1.0"]  # the slow upload is being served
        worker.join(timeout=30)
        problem = _problem(outcome["slow"], 504)
        assert "1 s" in problem["detail"]
        assert http.post("/v1/cross-entropy", json=GOOD).status_code == 200
    assert narrow.alive()


def test_the_deadline_holds_for_a_slow_v2_upload(narrow: LiveServer) -> None:
    # The Open Inference Protocol route shares the deadline; its errors are {"error"}.
    def slow_body() -> Iterator[bytes]:
        yield b'{"inputs": [{"name": "logits", "shape": [1, 2], "datatype": "FP32", "data": ['
        for _ in range(20):
            time.sleep(0.1)
            yield b" "
        yield b'1.0, 2.0]}, {"name": "labels", "shape": [1], "datatype": "INT64", "data": [0]}]}'

    with httpx.Client(base_url=narrow.url, timeout=30) as http:
        slow = http.post(
            "/v2/models/cross-entropy/infer",
            content=slow_body(),
            headers={"content-type": "application/json"},
        )
    assert slow.status_code == 504, slow.text
    assert "1 s" in slow.json()["error"]
    assert narrow.alive()


# Memory: peak RSS of the worker for a float32 binary request, relative to its payload.


def peak_rss_ratio(tmp: Path, shape: tuple[int, int]) -> tuple[int, int, int]:
    """(payload bytes, RSS before, peak RSS after) of one [N, C] float32 msgpack request."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal(shape, dtype=np.float32)
    labels = rng.integers(0, shape[1], shape[0])
    body = msgspec.msgpack.encode(
        {"logits": tensor(logits, json_body=False), "labels": labels.tolist(), "diagnostics": True}
    )
    del logits
    env = {
        "SCORER_MAX_BODY_BYTES": str(len(body) + 1024),
        "SCORER_MAX_ELEMENTS": str(shape[0] * shape[1]),
        "SCORER_REQUEST_TIMEOUT_SECONDS": "1800",
    }
    with live_server(tmp, env) as live:
        status = Path(f"/proc/{live.proc.pid}/status")

        def kib(field: str) -> int:
            line = next(x for x in status.read_text().splitlines() if x.startswith(field))
            return int(line.split()[1]) * 1024

        before = kib("VmRSS:")
        response = httpx.post(
            f"{live.url}/v1/cross-entropy",
            content=body,
            headers={"content-type": "application/msgpack"},
            timeout=600,
        )
        assert response.status_code == 200, response.text[:500]
        peak = kib("VmHWM:")
    timings = [line for line in live.log_lines() if '"app.access"' in line]
    print(timings[-1], f"client seconds {response.elapsed.total_seconds():.1f}")
    return len(body), before, peak


def test_peak_memory_is_a_small_multiple_of_the_payload(tmp_path: Path) -> None:
    payload, before, peak = peak_rss_ratio(tmp_path, (512, 50257))  # 103 MB of float32
    # The body is read into one buffer and tensors are views of it: about 1 x the payload.
    assert (peak - before) < 1.5 * payload, (payload, before, peak)


# python -m tests.api.test_limits: the figure in docs/configuration.md, "Memory".
if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        payload, before, peak = peak_rss_ratio(Path(tmp), (4096, 50257))
    mib = 1024 * 1024
    print(
        f"payload {payload / mib:.0f} MiB, RSS before {before / mib:.0f} MiB, "
        f"peak {peak / mib:.0f} MiB, peak - before = {(peak - before) / payload:.2f} x payload"
    )


# The depth measure itself, against a plain recursive count.


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=12,
)


@given(_JSON_VALUES, st.integers(0, 6))
def test_nesting_matches_a_plain_count(value: Any, limit: int) -> None:
    assert (_nesting(value, limit) >= limit) == (_depth(value) >= limit)


# Reading a body of declared length into one buffer.


def _read(chunks: list[bytes], declared: int, limit: int = 1000) -> bytes:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return anyio.run(read_body, receive, declared, limit)


def test_declared_length_is_read_into_one_buffer() -> None:
    assert _read([b"abc", b"", b"defg"], 7) == b"abcdefg"


def test_a_body_shorter_than_declared_is_what_arrived() -> None:
    assert _read([b"abc"], 7) == b"abc"


def test_a_body_longer_than_declared_is_refused() -> None:
    with pytest.raises(BodyTooLarge):
        _read([b"abcd", b"efgh"], 7)
    with pytest.raises(BodyTooLarge):  # in one message too
        _read([b"abcdefgh"], 7)


def test_a_body_in_one_message_is_returned_as_it_came() -> None:
    chunk = b"abcdefg"

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunk, "more_body": False}

    assert anyio.run(read_body, receive, 7, 1000) is chunk  # no copy


@pytest.mark.parametrize("first", [[], [b"ab"]], ids=["at-once", "after-a-chunk"])
def test_a_disconnect_while_reading_is_client_disconnect(first: list[bytes]) -> None:
    from starlette.requests import ClientDisconnect

    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in first
    ]
    messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    with pytest.raises(ClientDisconnect):
        anyio.run(read_body, receive, 7, 1000)


# Where the work runs: small plain bodies on the event loop, the rest in a thread.


@pytest.mark.parametrize(
    ("size", "encoding", "inline"),
    [
        pytest.param(100, None, True, id="small"),
        pytest.param(100, "identity", True, id="small-identity"),
        pytest.param(100, " Identity", True, id="small-identity-spelt-otherwise"),
        pytest.param(100, "gzip", False, id="small-compressed"),
        pytest.param(5000, None, False, id="large"),
    ],
)
def test_small_plain_bodies_run_on_the_event_loop(
    size: int, encoding: str | None, inline: bool
) -> None:
    import threading

    limits = Limits.from_settings(Settings(inline_body_bytes=1000))

    async def main() -> bool:
        loop_thread = threading.get_ident()
        ran_in = await run_sized(lambda _: threading.get_ident(), b"x" * size, encoding, limits)
        return ran_in == loop_thread

    assert anyio.run(main) is inline
