"""Reading a matrix's rows while the body arrives gives what the whole-body decode gives."""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.codecs import JSON, MSGPACK, reader_for
from app.codecs import _rows as rows
from app.codecs._rows import RowReader
from tests.codecs.conftest import ARRAY_FIELDS, outcome


class Spy:
    """The full decoder, noting the size of each body it is given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, body: bytes, fields: frozenset[str]) -> Any:
        self.sizes.append(len(body))
        return JSON.decode(body, fields)


def _fed(body: bytes, chunk: int, full: Any = JSON.decode) -> tuple[RowReader, bytes]:
    """A reader that has seen ``body`` arrive ``chunk`` bytes at a time, and the buffer.

    The buffer is the body as the server holds it: a bytearray, typed as bytes.
    """
    reader = RowReader(ARRAY_FIELDS, full)
    buffer = bytearray(len(body))
    for at in range(0, len(body), chunk):
        end = min(len(body), at + chunk)
        buffer[at:end] = body[at:end]
        reader.feed(buffer, end)
    return reader, cast(bytes, buffer)


def _read_ahead(body: bytes, chunk: int) -> Any:
    reader, arrived = _fed(body, chunk)
    result = outcome(lambda b, f: reader.decode(arrived, f), body)
    # The reader parses rows in place, in the buffer the full decoder may get next.
    assert arrived == body
    return result


@pytest.fixture(autouse=True)
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps of a few rows, so that small bodies take many."""
    monkeypatch.setattr(rows, "STEP_BYTES", 16)


def test_the_rows_are_read_as_they_arrive() -> None:
    logits = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    body = orjson.dumps(
        {"outputs": ["per_sample"], "logits": logits, "labels": list(range(50)), "x": 1},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    spy = Spy()
    reader, arrived = _fed(body, 100, spy)
    assert spy.sizes == []  # nothing decoded yet: the reader parsed rows on its own
    assert arrived == body  # parsed in place, and put back
    decoded = reader.decode(arrived, ARRAY_FIELDS)
    # The full decoder saw the body without the matrix: its text was replaced by null.
    assert spy.sizes
    assert spy.sizes[0] < len(body) // 5
    expected = np.array(orjson.loads(body)["logits"], np.float64)
    assert decoded.arrays["logits"].array.tobytes() == expected.tobytes()
    assert outcome(lambda b, f: decoded, body) == outcome(JSON.decode, body)


_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
_INTS = st.integers(-(2**63), 2**63 - 1)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    shape = draw(st.tuples(st.integers(1, 12), st.integers(1, 6)))
    elements = draw(st.sampled_from([_FLOATS, _INTS, st.one_of(_FLOATS, _INTS)]))
    matrix = draw(hnp.arrays(object, shape, elements=elements)).tolist()
    content: dict[str, Any] = {"logits": matrix}
    if draw(st.booleans()):
        content["labels"] = draw(st.lists(st.integers(0, 5), min_size=1, max_size=12))
    if draw(st.booleans()):
        content["outputs"] = ["per_sample"]
    order = draw(st.permutations(list(content)))
    ordered = {key: content[key] for key in order}
    if draw(st.booleans()):
        return json.dumps(ordered, indent=draw(st.sampled_from([None, 1]))).encode()
    spaced = draw(st.sampled_from([(", ", ": "), (",", ":"), (" , ", " : ")]))
    return json.dumps(ordered, separators=spaced).encode()


@settings(max_examples=150, deadline=None)
@given(body=_bodies(), chunk=st.integers(1, 64))
def test_any_body_in_any_chunks_decodes_as_a_whole(body: bytes, chunk: int) -> None:
    assert _read_ahead(body, chunk) == outcome(JSON.decode, body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"note": "[[", "logits": [[1, 2], [3, 4]]}', id="brackets-in-a-string"),
        pytest.param(b'{"o": {"logits": [[1, 2]]}, "logits": [[5, 6]]}', id="nested-object"),
        pytest.param(b'{"o": ["x", "logits", [[1, 2]]]}', id="nested-in-a-list"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5]]}', id="ragged"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5, "a"]]}', id="a-string"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5, 6]], "labels": [1,}', id="syntax-after"),
        pytest.param(b'{"logits": [[1, 2], [3, 4]], "logits": [[3, 4]]}', id="key-twice"),
        pytest.param(b'{"logits": [[1, 2], [3, 4]], "labels": [0, 1], "logits": 1}', id="dup"),
        pytest.param(b'{"logits": [[[1], [2]], [[3], [4]]]}', id="rank-3"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5.5, 6], [7, 8]]}', id="ints-then-floats"),
        pytest.param(b'{"logits": [[1, 2], [3, 4] ], "note": "]]"}', id="end-in-a-string"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5, 99999999999999999999]]}', id="big-int"),
        pytest.param(b'{"logits": [["nan", 1], [2, 3], [4, 5]]}', id="nan-strings"),
        pytest.param(b'{"log\\u0069ts": [[1, 2], [3, 4], [5, 6]]}', id="escaped-key"),
        pytest.param(b'\xef\xbb\xbf{"logits": [[1, 2], [3, 4], [5, 6]]}', id="byte-order-mark"),
        pytest.param(b'{"other": [[1, 2], [3, 4], [5, 6]], "logits": [[1]]}', id="not-a-field"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5, 6]]', id="unclosed"),
        pytest.param(b'{"logits": [[1, 2], [3, 4], [5, 6]] ]', id="extra-bracket"),
        pytest.param(b'{"logits": [[1, 2],, [3, 4], [5, 6]]}', id="two-commas"),
        pytest.param(b'{"logits": [[1, 2] [3, 4], [5, 6]]}', id="no-comma"),
        pytest.param(b'{"logits": [[]]}', id="empty-row"),
        pytest.param(b'{"logits": [[1, 2], [3, 4]]}trailing', id="trailing-text"),
        pytest.param(b'[{"logits": [[1, 2], [3, 4]]}]', id="not-an-object"),
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_unusual_bodies_get_the_whole_decoders_answer(body: bytes, chunk: int) -> None:
    assert _read_ahead(body, chunk) == outcome(JSON.decode, body)


class Searched(bytearray):
    """A body buffer that counts the bytes its searches cover."""

    scanned = 0

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> int:
        self.scanned += (len(self) if end is None else end) - (start or 0)
        return super().rfind(sub, start, end)


def test_a_row_longer_than_a_step_is_searched_once() -> None:
    row = ",".join(["0.5"] * 20_000)
    body = f'{{"logits": [[{row}], [{row}]], "labels": [0, 1]}}'.encode()
    reader = RowReader(ARRAY_FIELDS, JSON.decode)
    buffer = Searched(len(body))
    for at in range(0, len(body), 50):  # ~3000 chunks, each past the step of 16 bytes
        end = min(len(body), at + 50)
        buffer[at:end] = body[at:end]
        reader.feed(buffer, end)
    assert buffer.scanned <= len(body)  # linear: each byte searched at most once
    expected = outcome(JSON.decode, body)
    assert outcome(lambda b, f: reader.decode(cast(bytes, buffer), f), body) == expected


def test_a_body_that_never_came_in_pieces_is_decoded_whole() -> None:
    body = b'{"logits": [[1, 2], [3, 4]]}'
    spy = Spy()
    decoded = RowReader(ARRAY_FIELDS, spy).decode(body, ARRAY_FIELDS)
    assert spy.sizes == [len(body)]
    assert decoded.arrays["logits"].array.shape == (2, 2)


def test_only_large_json_bodies_get_a_reader() -> None:
    assert reader_for(JSON, ARRAY_FIELDS, 4 << 20) is not None
    assert reader_for(JSON, ARRAY_FIELDS, (4 << 20) - 1) is None
    assert reader_for(MSGPACK, ARRAY_FIELDS, 64 << 20) is None
