"""What the JSON wire looks like: non-finite floats as strings, tensors as base64."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import orjson
import pytest

from app.codecs import JSON, Tensor


def _wire(content: dict[str, Any]) -> Any:
    return orjson.loads(JSON.encode(content))


def test_media_types():
    assert JSON.media_type == "application/json"
    assert JSON.problem_media_type == "application/problem+json"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(math.inf, "inf", id="inf"),
        pytest.param(-math.inf, "-inf", id="-inf"),
        pytest.param(math.nan, "nan", id="nan"),
        pytest.param(np.float32("-inf"), "-inf", id="np-float32"),
        pytest.param(np.float64("nan"), "nan", id="np-float64"),
        pytest.param(2.5, 2.5, id="finite"),
    ],
)
def test_non_finite_scalars_are_strings_never_null(value: Any, expected: Any):
    assert _wire({"x": value, "nested": [{"y": value}]}) == {
        "x": expected,
        "nested": [{"y": expected}],
    }


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_non_finite_arrays_are_strings(dtype: Any):
    array = np.array([[0.5, np.nan], [np.inf, -np.inf]], dtype=dtype)
    assert _wire({"x": array}) == {"x": [[0.5, "nan"], ["inf", "-inf"]]}


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_finite_arrays_are_numbers(dtype: Any):
    assert _wire({"x": np.array([[0.5, -2.0]], dtype=dtype)}) == {"x": [[0.5, -2.0]]}


def test_integer_arrays_stay_integers():
    assert JSON.encode({"x": np.array([1, -2], dtype=np.int32)}) == b'{"x":[1,-2]}'


def test_bool_and_zero_dimensional_arrays():
    assert _wire({"b": np.array([True, False]), "z": np.array(np.nan)}) == {
        "b": [True, False],
        "z": "nan",
    }


def test_object_arrays_go_through_lists():
    assert _wire({"x": np.array([1, "a"], dtype=object)}) == {"x": [1, "a"]}


def test_tensor_wire_form():
    array = np.array([1.0, 2.0], dtype=">f4")
    wire = _wire({"t": Tensor(array)})["t"]
    assert wire["dtype"] == "float32"
    assert wire["shape"] == [2]
    assert base64.b64decode(wire["data"]) == array.astype("<f4").tobytes()


def test_unsupported_values_raise_type_error():
    with pytest.raises(TypeError):
        JSON.encode({"x": object()})
