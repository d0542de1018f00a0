"""Nested-list arrays in both codecs: dtype rules, shapes, and every rejection with its loc."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest

from app.codecs import JSON, MSGPACK, Codec, InvalidArray
from app.codecs._arrays import MAX_RANK
from tests.codecs.conftest import ARRAY_FIELDS, body_for


def _decode(codec: Codec, content: Any) -> np.ndarray[Any, Any]:
    decoded = codec.decode(body_for(codec, content), ARRAY_FIELDS)
    assert not decoded.arrays["logits"].tensor
    return decoded.arrays["logits"].array


@pytest.mark.parametrize(
    ("value", "dtype", "shape"),
    [
        pytest.param(2, np.int64, (), id="rank0-int"),
        pytest.param(2.5, np.float64, (), id="rank0-float"),
        pytest.param("inf", np.float64, (), id="rank0-inf-string"),
        pytest.param([1, 2, 3], np.int64, (3,), id="rank1-int"),
        pytest.param([1, 2.5], np.float64, (2,), id="rank1-mixed"),
        pytest.param([[1.0, 2.0], [3.0, 4.0]], np.float64, (2, 2), id="rank2"),
        pytest.param([[[1], [2]], [[3], [4]]], np.int64, (2, 2, 1), id="rank3-int"),
        pytest.param([], np.float64, (0,), id="empty"),
        pytest.param([[], []], np.float64, (2, 0), id="empty-rows"),
        pytest.param([2**63 - 1, -(2**63)], np.int64, (2,), id="int64-bounds"),
    ],
)
def test_lists_decode_to_int64_or_float64(codec: Codec, value: Any, dtype: Any, shape: Any):
    array = _decode(codec, {"logits": value})
    assert array.dtype == dtype
    assert array.shape == shape
    np.testing.assert_array_equal(array, np.array(value, dtype=dtype))


def test_non_finite_strings_decode_in_both_codecs(codec: Codec):
    array = _decode(codec, {"logits": [[1, "inf"], ["-inf", "nan"]]})
    assert array.dtype == np.float64
    assert array[0, 1] == math.inf
    assert array[1, 0] == -math.inf
    assert math.isnan(array[1, 1])


def test_msgpack_native_non_finite_floats():
    body = msgspec.msgpack.encode({"logits": [math.nan, math.inf, -math.inf, 1.0]})
    array = MSGPACK.decode(body, ARRAY_FIELDS).arrays["logits"].array
    np.testing.assert_array_equal(array, [math.nan, math.inf, -math.inf, 1.0])


def test_null_array_field_is_an_option(codec: Codec):
    decoded = codec.decode(body_for(codec, {"logits": None, "labels": [1]}), ARRAY_FIELDS)
    assert decoded.options == {"logits": None}
    assert set(decoded.arrays) == {"labels"}


def test_json_whitespace_before_nested_lists():
    body = b'{"logits": [ \n [1, 2],\t[3, 4] ] }'
    assert JSON.decode(body, ARRAY_FIELDS).arrays["logits"].array.shape == (2, 2)


def test_long_msgpack_arrays_use_16_and_32_bit_headers():
    content = {"logits": [[0.5] * 70_000], "labels": list(range(20))}
    decoded = MSGPACK.decode(msgspec.msgpack.encode(content), ARRAY_FIELDS)
    assert decoded.arrays["logits"].array.shape == (1, 70_000)
    assert decoded.arrays["labels"].array.shape == (20,)


@pytest.mark.parametrize(
    ("value", "loc", "message"),
    [
        pytest.param([[1, True]], ("logits", 0, 1), "expected a number, got bool", id="bool"),
        pytest.param(True, ("logits",), "expected a number, got bool", id="rank0-bool"),
        pytest.param([[1, "abc"]], ("logits", 0, 1), "got 'abc'", id="string"),
        pytest.param("abc", ("logits",), "got 'abc'", id="rank0-string"),
        pytest.param([[1, {"a": 1}]], ("logits", 0, 1), "got object", id="object"),
        pytest.param([1, None], ("logits", 1), "expected a number, got", id="null-element"),
        pytest.param([2**63], ("logits", 0), "int64 range", id="int-too-big"),
        pytest.param([[1, 2], [3]], ("logits", 1), "length 1 differs from length 2", id="ragged"),
        pytest.param([[], [1]], ("logits", 1), "length 1 differs from length 0", id="ragged-empty"),
        pytest.param(
            [[[1], [2]], [[3], [4, 5]]], ("logits", 1, 1), "of logits[0][0]", id="ragged-rank3"
        ),
        pytest.param([[1, 2], 3], ("logits", 1), "expected a nested array", id="shallow-row"),
        pytest.param([1, [2]], ("logits", 1), "got a nested array", id="deep-element"),
        pytest.param([[1, 2], [3, [4]]], ("logits", 1, 1), "nested array", id="deep-inner"),
    ],
)
def test_rejections_have_the_exact_loc(codec: Codec, value: Any, loc: Any, message: str):
    with pytest.raises(InvalidArray) as info:
        _decode(codec, {"logits": value})
    assert info.value.loc == loc
    assert message in info.value.message


def test_json_number_out_of_float64_range():
    with pytest.raises(InvalidArray) as info:
        JSON.decode(b'{"logits": [[1.0, 1e400]]}', ARRAY_FIELDS)
    assert info.value.loc == ("logits", 0, 1)
    assert info.value.message == "logits[0][1]: number out of float64 range"


@pytest.mark.parametrize(
    "number",
    [
        pytest.param(b"100000000000000000000000", id="beyond-uint64"),
        pytest.param(b"-9223372036854775809", id="below-int64"),
    ],
)
def test_json_integers_outside_int64(number: bytes):
    # msgpack cannot carry these at all; JSON can, and they are rejected, not rounded.
    with pytest.raises(InvalidArray) as info:
        JSON.decode(b'{"logits": [1, ' + number + b"]}", ARRAY_FIELDS)
    assert info.value.loc == ("logits", 1)
    assert "int64 range" in info.value.message


def test_rank_is_capped(codec: Codec):
    value: Any = 1.0
    for _ in range(MAX_RANK + 1):
        value = [value]
    with pytest.raises(InvalidArray, match="nested levels") as info:
        _decode(codec, {"logits": value})
    assert info.value.loc == ("logits",)


def test_rejection_message_names_the_path():
    with pytest.raises(InvalidArray) as info:
        JSON.decode(b'{"labels": [0, 1, true]}', ARRAY_FIELDS)
    assert info.value.message == "labels[2]: expected a number, got bool"
