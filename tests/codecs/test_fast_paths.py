"""The bulk readers agree with the precise path: same arrays, bit for bit, same errors."""

from __future__ import annotations

import dataclasses
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.codecs import JSON, MSGPACK, Tensor
from app.codecs import json as json_codec
from app.codecs import msgpack as msgpack_codec
from app.codecs._decoding import decode_body
from app.codecs._numbers import (
    _IDLE,
    KEEP_AFTER_BYTES,
    acquire,
    count_brackets,
    read_numbers,
    release,
)
from app.codecs._plain import decode_plain
from app.codecs._tree import convert
from app.codecs._unpacking import unpack_numbers
from tests.codecs.conftest import ARRAY_FIELDS, outcome

_PRECISE = {
    "json": dataclasses.replace(json_codec._SYNTAX, fast_array=None, fast_body=None),
    "msgpack": dataclasses.replace(msgpack_codec._SYNTAX, fast_array=None),
}


def _precise(syntax: str) -> Any:
    return lambda body, fields: decode_body(body, fields, _PRECISE[syntax])


def assert_agrees(body: bytes, syntax: str = "json") -> None:
    codec = JSON if syntax == "json" else MSGPACK
    assert outcome(codec.decode, body) == outcome(_precise(syntax), body)


# Number spellings, including those the fast paths must decline or get exactly right.
_SPECIAL = [
    "0", "-0", "-0.0", "0.0", "1e-320", "-1e-320", "5e-324", "1e-400", "-1e-400",
    "1.7976931348623157e308", "-1.7976931348623157e308", "1e999", "-1e999", "1E2",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "18446744073709551616",
    "123456789012345678901234567890", "9007199254740993", "0.1", "2.5e-3",
    "0.30000000000000004", "1.00000000000000011102230246251565404236316680908203125",
]  # fmt: skip
_OTHER = ['"inf"', '"-inf"', '"nan"', '"abc"', '"[1]"', "true", "false", "null", "{}"]

_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(
        lambda x: (
            np.format_float_positional(np.float32(x), unique=True, trim="-")
            if abs(x) < 1e6
            else repr(float(np.float32(x)))
        )
    ),
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(_SPECIAL),
)
_ANY_TOKEN = st.one_of(_NUMBERS, _NUMBERS, _NUMBERS, st.sampled_from(_OTHER))


@st.composite
def _rectangular(draw: st.DrawFn, tokens: st.SearchStrategy[str]) -> str:
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    count = math.prod(shape)
    leaves = iter(draw(st.lists(tokens, min_size=count, max_size=count)))

    def build(depth: int) -> str:
        if depth == len(shape):
            return next(leaves)
        return "[" + ",".join(build(depth + 1) for _ in range(shape[depth])) + "]"

    return build(0)


_NESTED = st.recursive(_ANY_TOKEN, lambda inner: st.lists(inner, max_size=4).map(
    lambda items: "[" + ", ".join(items) + "]"
), max_leaves=20)  # fmt: skip


def _json_body(logits: str, labels: str = "[0]", extra: str = "") -> bytes:
    return f'{{"outputs": ["per_sample"], "logits": {logits}, "labels": {labels}{extra}}}'.encode()


@settings(max_examples=300)
@given(_rectangular(_NUMBERS), _rectangular(st.integers(-5, 2**63 - 1).map(str)))
def test_json_numeric_arrays_agree_bit_for_bit(logits: str, labels: str):
    assert_agrees(_json_body(logits, labels))


@settings(max_examples=300)
@given(_rectangular(_ANY_TOKEN))
def test_json_arrays_with_any_element_agree(logits: str):
    assert_agrees(_json_body(logits))


@settings(max_examples=300)
@given(_NESTED, st.sampled_from(["", ', "reduction": "mean"', ', "x": [1, "a[b"]']))
def test_json_ragged_and_nested_arrays_agree(logits: str, extra: str):
    assert_agrees(_json_body(logits, extra=extra))
    # The per-array reader (the path for bodies that are not plain) agrees as well.
    assert_agrees(_json_body(logits, extra=', "opts": {"a": 1}'))


@pytest.mark.parametrize(
    "logits",
    [
        pytest.param("[[1.5, 2.5], [3.5]]", id="ragged-rows"),
        pytest.param("[[0.5, 1.5], [2.5], [3.5, 4.5, 5.5]]", id="ragged-same-size"),
        pytest.param("[[[1.5], [2.5]], [[3.5], [4.5, 5.5]]]", id="ragged-depth-3"),
        pytest.param("[[1.5, [2.5]], [3.5, 4.5]]", id="array-for-a-number"),
        pytest.param("[[1.5, 2.5], 3.5]", id="number-for-an-array"),
        pytest.param('[[1.5, "abc"]]', id="string"),
        pytest.param('[[1.5, "inf"], ["-inf", "nan"]]', id="non-finite-strings"),
        pytest.param("[[1.5, true]]", id="bool"),
        pytest.param("[[1.5, null]]", id="null"),
        pytest.param("[[1.5, {}]]", id="object"),
        pytest.param("[" * 33 + "1.5" + "]" * 33, id="too-deep"),
        pytest.param("[" * 32 + "1.5" + "]" * 32, id="deepest"),
        pytest.param("[0.5, 9223372036854775808]", id="int-past-int64-among-floats"),
        pytest.param("[9223372036854775808, 1]", id="uint64"),
        pytest.param("[-9223372036854775809]", id="past-int64-low"),
        pytest.param("[1, 123456789012345678901234567890]", id="bigint"),
        pytest.param("[1.5, 1e999]", id="past-float64"),
        pytest.param("[1e308, 1.7976931348623157e308]", id="huge-floats"),
        pytest.param("[1, 2.5]", id="int-then-float"),
        pytest.param("[-0, 1.5]", id="minus-zero-int"),
        pytest.param("[[]]", id="empty"),
        pytest.param("[]", id="empty-rank-1"),
        pytest.param("1.5", id="scalar"),
        pytest.param("null", id="null-field"),
        pytest.param('{"dtype": "float64", "shape": [1], "data": "AAAAAAAA+D8="}', id="tensor"),
    ],
)
def test_json_known_inputs_agree(logits: str):
    assert_agrees(_json_body(logits))
    assert_agrees(_json_body(logits, extra=', "opts": {"a": 1}'))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'\xef\xbb\xbf{"logits": [1.5]}', id="byte-order-mark"),
        pytest.param(b'{"logits": [1.5], "logits": [2.5]}', id="duplicate-key"),
        pytest.param(b'{"a[": 1, "logits": [1.5]}', id="bracket-in-key"),
        pytest.param(b'{"a": "[", "logits": [1.5]}', id="bracket-in-string"),
        pytest.param(b'{"a": [[1]], "logits": [1.5]}', id="nested-option"),
        pytest.param(b'{"a": 1e999, "logits": [1.5]}', id="option-past-float64"),
        pytest.param(b'{"a": 18446744073709551616, "logits": [1.5]}', id="option-bigint"),
        pytest.param(b'{"a": "\\ud800", "logits": [1.5]}', id="lone-surrogate"),
        pytest.param(b'{"a": "\xff", "logits": [1.5]}', id="bad-utf8"),
        pytest.param(b'{"logits": [1.5]} x', id="trailing"),
        pytest.param(b'[{"logits": [1.5]}]', id="not-an-object"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"a": -0, "b": -0.0, "c": 1e-400, "d": [true, null, "s"]}', id="options"),
    ],
)
def test_json_bodies_agree(body: bytes):
    assert_agrees(body)


def test_json_fast_paths_are_taken_for_plain_bodies():
    body = _json_body("[[0.37719065, -1.5e-3], [2, 3]]", "[1, 0]")
    assert decode_plain(body, ARRAY_FIELDS) is not None
    array = read_numbers(memoryview(b"[[0.5, 1], [2, 3]]"))
    assert array is not None
    assert array.dtype == np.float64
    labels = read_numbers(memoryview(b"[1, -0, 2]"))
    assert labels is not None
    assert labels.dtype == np.int64
    # Not plain (an object among the options), so each array goes through read_numbers.
    assert decode_plain(_json_body("[1.5]", extra=', "o": {}'), ARRAY_FIELDS) is None


def test_json_parsers_are_not_shared_between_threads():
    bodies = [_json_body(f"[[{i}.5, 1.25], [2.5, {i}]]", f"[{i}, 1]") for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        for body, decoded in zip(
            bodies, pool.map(lambda b: JSON.decode(b, ARRAY_FIELDS), bodies), strict=True
        ):
            expected = _precise("json")(body, ARRAY_FIELDS)
            np.testing.assert_array_equal(
                decoded.arrays["logits"].array, expected.arrays["logits"].array
            )


def test_one_idle_parser_is_kept():
    # Each parser keeps the buffers of its largest document: only one waits for reuse.
    _IDLE.clear()
    first, second = acquire(), acquire()
    release(first, 100)
    release(second, 100)
    assert len(_IDLE) == 1
    assert _IDLE[0] is first


def test_a_parser_that_read_a_huge_document_is_not_kept() -> None:
    # Its buffers (about 3.4x the document) would stay with the idle worker.
    _IDLE.clear()
    release(acquire(), KEEP_AFTER_BYTES + 1)
    assert not _IDLE
    release(acquire(), KEEP_AFTER_BYTES)
    assert len(_IDLE) == 1


_MSGPACK_LEAVES = st.one_of(
    st.floats(),
    st.floats(width=32),
    st.integers(-(2**63), 2**64 - 1),  # all msgpack can carry
    st.sampled_from([0.0, -0.0, 5e-324, 1.7976931348623157e308, True, None, "inf", "x"]),
)


@st.composite
def _msgpack_rectangular(draw: st.DrawFn, leaves: st.SearchStrategy[Any]) -> Any:
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    flat = iter(draw(st.lists(leaves, min_size=math.prod(shape), max_size=math.prod(shape))))

    def build(depth: int) -> Any:
        if depth == len(shape):
            return next(flat)
        return [build(depth + 1) for _ in range(shape[depth])]

    return build(0)


@settings(max_examples=300)
@given(
    _msgpack_rectangular(st.one_of(st.floats(), st.floats(width=32))),
    _msgpack_rectangular(st.integers(-(2**63), 2**63 - 1)),
)
def test_msgpack_numeric_arrays_agree_bit_for_bit(logits: Any, labels: Any):
    assert_agrees(msgspec.msgpack.encode({"logits": logits, "labels": labels}), "msgpack")


@settings(max_examples=300)
@given(
    _msgpack_rectangular(_MSGPACK_LEAVES)
    | st.recursive(_MSGPACK_LEAVES, lambda inner: st.lists(inner, max_size=4), max_leaves=20)
)
def test_msgpack_any_arrays_agree(logits: Any):
    assert_agrees(msgspec.msgpack.encode({"logits": logits, "labels": [1]}), "msgpack")


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param([1, 2**63], id="uint64"),
        pytest.param([1, 2.0], id="float-among-ints"),
        pytest.param([1, True], id="bool"),
        pytest.param([[1, 2], [3]], id="ragged"),
        pytest.param([[1, 2], 3], id="number-for-an-array"),
        pytest.param([[[0]]] * 2, id="rank-3"),
    ],
)
def test_msgpack_integer_arrays_agree(labels: Any):
    assert_agrees(msgspec.msgpack.encode({"labels": labels}), "msgpack")


def test_msgpack_fast_paths_are_taken():
    assert unpack_numbers(memoryview(msgspec.msgpack.encode([[1.5, 2.5]]))) is not None
    labels = unpack_numbers(memoryview(msgspec.msgpack.encode([3, -1, 200, 70000])))
    assert labels is not None
    assert labels.dtype == np.int64
    too_deep = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1.5]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
    assert unpack_numbers(memoryview(msgspec.msgpack.encode(too_deep))) is None
    assert unpack_numbers(memoryview(msgspec.msgpack.encode(["x"]))) is None


@pytest.mark.parametrize(
    "logits",
    [
        pytest.param('[ [ "x" ] ]', id="spaced-string"),
        pytest.param("[ [ 1.5 ], [ ] ]", id="spaced-ragged"),
        pytest.param("[[], [1.5]]", id="empty-first-row"),
    ],
)
def test_declined_arrays_keep_their_errors(logits: str):
    # A nested option makes the body not plain; the array then falls to the precise path.
    assert_agrees(_json_body(logits, extra=', "o": {"p": 1}'))


# Response trees as endpoints build them: dicts of floats (non-finite too), ints, None,
# strings, shape lists, NumPy arrays and scalars, tensors.
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
_ARRAYS = hnp.arrays(
    st.sampled_from([np.float32, np.float64, np.int64, np.float16]),
    hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
)
_LEAVES = st.one_of(
    _FLOATS,
    st.integers(-(2**53), 2**53),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(0, 10), max_size=3),
    _ARRAYS,
    _ARRAYS.map(Tensor),
    _FLOATS.map(np.float64),
)
_TREES = st.recursive(
    _LEAVES, lambda inner: st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=12
)


@given(st.dictionaries(st.text(max_size=4), _TREES, max_size=5))
def test_encoders_write_what_the_leaf_by_leaf_walk_writes(tree: dict[str, Any]) -> None:
    # The walk (convert + _leaf) is the reference: it applies the wire rules leaf by leaf.
    walked = convert(tree, json_codec._leaf)
    json_reference = orjson.dumps(walked, option=orjson.OPT_SERIALIZE_NUMPY)
    assert JSON.encode(tree) == json_reference
    floats_as_they_are = lambda v: v if type(v) is float else msgpack_codec._leaf(v)  # noqa: E731
    msgpack_reference = msgspec.msgpack.encode(convert(tree, floats_as_they_are))
    assert MSGPACK.encode(tree) == msgpack_reference


def test_a_float32_scalar_is_written_as_float32_arrays_are() -> None:
    value = np.float32(47617632.0)
    assert JSON.encode({"a": value, "b": np.array([value])}) == b'{"a":47617630.0,"b":[47617630.0]}'
    assert JSON.encode({"a": np.float32("nan")}) == b'{"a":"nan"}'


@given(st.binary(max_size=300), st.sampled_from([1, 7, 64]), st.integers(0, 3))
def test_brackets_are_counted_in_any_text(text: bytes, step: int, copies: int) -> None:
    import app.codecs._numbers as numbers

    body = text * (1 + copies * 300)  # across the 64 KiB switch to NumPy
    original = numbers._COUNT_STEP
    numbers._COUNT_STEP = step * 1024  # several pieces, and a short last one
    try:
        assert count_brackets(body) == body.count(b"[")
        assert count_brackets(memoryview(body)[1:]) == body[1:].count(b"[")
    finally:
        numbers._COUNT_STEP = original


@pytest.mark.parametrize("big", ["9223372036854775808", "-9223372036854775809", "1e19"])
def test_a_magnitude_past_int64_among_floats_agrees(big: str) -> None:
    # The float reader checks its range with min and max: past int64 the precise path
    # decides (1e19 is a float and fine; the integers are refused there).
    assert_agrees(f'{{"logits": [[1.5, {big}], [2.5, 3.5]], "labels": [0, 1]}}'.encode())


@pytest.mark.parametrize("bad", [None, math.nan, math.inf])
def test_a_big_response_is_checked_by_its_arrays(bad: float | None) -> None:
    # Over 64 KiB the arrays are checked instead of the text being searched for null.
    probs = np.linspace(0, 1, 40_000).reshape(200, 200)
    if bad is not None:
        probs[123, 45] = bad
    tree = {"loss": None, "probs": probs, "diagnostics": {"max": 1.0}}
    walked = orjson.dumps(convert(tree, json_codec._leaf), option=orjson.OPT_SERIALIZE_NUMPY)
    encoded = JSON.encode(tree)
    assert len(encoded) > 1 << 16
    assert encoded == walked
