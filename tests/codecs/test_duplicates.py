"""Duplicate top-level keys, found from the gaps between decoded values."""

from __future__ import annotations

import msgspec
import pytest

from app.codecs._duplicates import duplicate_key
from app.codecs.errors import DuplicateKey

_JSON = msgspec.json.Decoder(dict[str, msgspec.Raw])
_MSGPACK = msgspec.msgpack.Decoder(dict[str, msgspec.Raw])


def _json(body: bytes) -> DuplicateKey | None:
    return duplicate_key(body, _JSON.decode(body), "JSON")


def _msgpack(body: bytes) -> DuplicateKey | None:
    return duplicate_key(body, _MSGPACK.decode(body), "msgpack")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param(b'{"a":1,"a":2}', "a", id="compact"),
        pytest.param(b'{ "a" : [1, 2] ,\n "b": 0, "a" : [3] }', "a", id="spaced"),
        pytest.param(b'{"b": 0, "a": {"x": 1}, "a": 2}', "a", id="object-value"),
        pytest.param(b'{"a\\"b": 1, "a\\"b": 2}', 'a"b', id="escaped-quote"),
        pytest.param('{"é": 1, "é": 2}'.encode(), "é", id="non-ascii"),
        pytest.param(b'{"a": 1, "b": 2, "b": 3, "a": 4}', "a", id="two-duplicates"),
    ],
)
def test_json_duplicates_name_the_key(body: bytes, key: str) -> None:
    error = _json(body)
    assert error is not None
    assert error.loc == (key,)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{}", id="empty"),
        pytest.param(b'{"a":1,"b":2}', id="compact"),
        pytest.param(b' {  "a" : [1, 2] ,\n\t"b" : "x:y" } ', id="spaced"),
        pytest.param(b'{"a:b": 1, "c,d": 2, "{": 3}', id="punctuation-in-keys"),
        pytest.param(b'{"re\\u0064uction": "sum", "x": 1}', id="escaped-key"),
    ],
)
def test_json_without_duplicates(body: bytes) -> None:
    assert _json(body) is None


def test_values_that_are_not_views_into_the_body_skip_the_check() -> None:
    body = b'{ "a" :   1  ,   "a"  :  2 }'
    copies = {"a": msgspec.Raw(b"2")}
    assert duplicate_key(body, copies, "JSON") is None
    assert _json(body) is not None


def test_json_gap_without_a_clean_key() -> None:
    from app.codecs._duplicates import _json_gap_key

    assert _json_gap_key(b', "a": 1, "a":') == "a"
    assert _json_gap_key(b", 1 2 :") == "?"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param(b"\x82\xa1a\x01\xa1a\x02", "a", id="fixmap"),
        pytest.param(b"\xde\x00\x02\xa1a\x01\xa1a\x02", "a", id="map16"),
        pytest.param(b"\xdf\x00\x00\x00\x02\xa1a\x01\xa1a\x02", "a", id="map32"),
        pytest.param(b"\x83\xa1b\x00\xd9\x01a\x91\x01\xd9\x01a\x02", "a", id="str8-key"),
        pytest.param(b"\x82\xda\x00\x01a\x01\xda\x00\x01a\x02", "a", id="str16-key"),
        pytest.param(b"\x82\xdb\x00\x00\x00\x01a\x01\xdb\x00\x00\x00\x01a\x02", "a", id="str32"),
    ],
)
def test_msgpack_duplicates_name_the_key(body: bytes, key: str) -> None:
    error = _msgpack(body)
    assert error is not None
    assert error.loc == (key,)


def test_msgpack_without_duplicates() -> None:
    assert _msgpack(msgspec.msgpack.encode({"a": 1, "b": [1, 2]})) is None


def test_msgpack_gap_without_a_clean_key() -> None:
    from app.codecs._duplicates import _msgpack_gap_key, _msgpack_map_length

    assert _msgpack_gap_key(b"\x01\x02", first=False) == "?"
    assert _msgpack_gap_key(b"\xa3ab", first=False) == "?"
    assert _msgpack_gap_key(b"", first=False) == "?"
    assert _msgpack_map_length(b"\x91\x01") is None
