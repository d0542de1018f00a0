"""decode(encode(x)) == x in both codecs, for lists and tensors, non-finite values included."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.codecs import Codec, Tensor
from tests.codecs.conftest import ARRAY_FIELDS, CODEC_PARAMS

RNG = np.random.default_rng(20261126)


def _roundtrip(codec: Codec, value: Any, field: str = "logits") -> Any:
    decoded = codec.decode(codec.encode({field: value}), ARRAY_FIELDS)
    if field in ARRAY_FIELDS:
        return decoded.arrays[field]
    return decoded.options[field]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("mean", id="str"),
        pytest.param(3, id="int"),
        pytest.param(-0.25, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
        pytest.param([1, "a", None, 2.5], id="list"),
        pytest.param({"k": {"n": [1, 2]}}, id="dict"),
    ],
)
def test_plain_options_roundtrip(codec: Codec, value: Any):
    assert _roundtrip(codec, value, field="option") == value


def test_tuples_become_lists(codec: Codec):
    assert _roundtrip(codec, (1, (2, 3)), field="option") == [1, [2, 3]]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        pytest.param(np.float32(1.5), 1.5, id="float32"),
        pytest.param(np.float64(0.1), 0.1, id="float64"),
        pytest.param(np.float16(0.5), 0.5, id="float16"),
        pytest.param(np.int64(7), 7, id="int64"),
        pytest.param(np.int32(-7), -7, id="int32"),
        pytest.param(np.bool_(True), True, id="bool"),
    ],
)
def test_numpy_scalars_encode(codec: Codec, scalar: Any, expected: Any):
    got = _roundtrip(codec, scalar, field="option")
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("scalar", "check"),
    [
        pytest.param(math.inf, lambda x: x == math.inf, id="inf"),
        pytest.param(-math.inf, lambda x: x == -math.inf, id="-inf"),
        pytest.param(math.nan, math.isnan, id="nan"),
        pytest.param(np.float32("nan"), math.isnan, id="np-nan"),
    ],
)
def test_non_finite_scalars_roundtrip_through_array_fields(codec: Codec, scalar: Any, check: Any):
    decoded = _roundtrip(codec, scalar)
    assert decoded.array.shape == ()
    assert check(float(decoded.array))


@pytest.mark.parametrize("rank", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_arrays_roundtrip_by_rank(codec: Codec, rank: int, dtype: Any):
    array = (RNG.standard_normal((3, 4, 2)[:rank]) * 100).astype(dtype)
    decoded = _roundtrip(codec, array)
    assert not decoded.tensor
    assert decoded.array.dtype == dtype
    np.testing.assert_array_equal(decoded.array, array)


@pytest.mark.parametrize(
    "dtype", [np.float16, np.float32, np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32]
)
def test_other_dtypes_widen_to_float64_or_int64(codec: Codec, dtype: Any):
    array = np.arange(-3, 3).astype(dtype)
    decoded = _roundtrip(codec, array)
    assert decoded.array.dtype == (np.float64 if array.dtype.kind == "f" else np.int64)
    np.testing.assert_array_equal(decoded.array, array)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_non_finite_arrays_roundtrip(codec: Codec, dtype: Any):
    array = np.array([[1.5, np.nan], [np.inf, -np.inf]], dtype=dtype)
    decoded = _roundtrip(codec, array)
    np.testing.assert_array_equal(decoded.array, array.astype(np.float64))


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.arange(12.0).reshape(3, 4).T, id="transposed"),
        pytest.param(np.arange(12.0)[::2], id="strided"),
        pytest.param(np.arange(6.0).astype(">f8").reshape(2, 3), id="big-endian"),
        pytest.param(np.arange(6).astype(">i4"), id="big-endian-int"),
    ],
)
def test_non_contiguous_and_big_endian_arrays(codec: Codec, array: Any):
    np.testing.assert_array_equal(_roundtrip(codec, array).array, array)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64"])
@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(lambda a: a, id="contiguous"),
        pytest.param(lambda a: a.T, id="transposed"),
        pytest.param(lambda a: a.astype(a.dtype.newbyteorder(">")), id="big-endian"),
    ],
)
def test_tensors_roundtrip_with_dtype_and_shape(codec: Codec, dtype: str, layout: Any):
    array = layout((RNG.standard_normal((3, 5)) * 10).astype(dtype))
    decoded = _roundtrip(codec, Tensor(array))
    assert decoded.tensor
    assert decoded.array.dtype == np.dtype(dtype)
    assert decoded.array.shape == array.shape
    np.testing.assert_array_equal(decoded.array, array)


def test_tensor_keeps_empty_axes_that_lists_cannot(codec: Codec):
    array = np.zeros((0, 3))
    assert _roundtrip(codec, Tensor(array)).array.shape == (0, 3)
    assert _roundtrip(codec, array).array.shape == (0,)


def test_non_finite_tensor(codec: Codec):
    array = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)
    np.testing.assert_array_equal(_roundtrip(codec, Tensor(array)).array, array)


def test_tensor_of_unsupported_dtype_is_a_programming_error(codec: Codec):
    with pytest.raises(TypeError, match="one of the dtypes"):
        codec.encode({"out": Tensor(np.array([True]))})


_float64_arrays = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5),
    elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
)


@pytest.mark.parametrize("codec", CODEC_PARAMS)
@given(array=_float64_arrays, tensor=st.booleans())
def test_roundtrip_property(codec: Codec, array: np.ndarray[Any, Any], tensor: bool):
    decoded = _roundtrip(codec, Tensor(array) if tensor else array)
    assert decoded.tensor is tensor
    assert decoded.array.dtype == np.float64
    np.testing.assert_array_equal(decoded.array, array)
    # Signed zeros survive too (a NaN's sign bit does not: JSON has one "nan").
    finite = ~np.isnan(array)
    np.testing.assert_array_equal(np.signbit(decoded.array[finite]), np.signbit(array[finite]))


class _Labels(list[int]):
    """A list subclass, as some result types are."""


class _Name(str):
    """A str subclass; both encoders take it as a string."""


def test_mappings_and_subclasses_encode_as_plain_values(codec: Codec):
    from types import MappingProxyType

    content = {"option": MappingProxyType({"labels": _Labels([1, 2]), "name": _Name("ce")})}
    assert codec.decode(codec.encode(content), ARRAY_FIELDS).options == {
        "option": {"labels": [1, 2], "name": "ce"}
    }
