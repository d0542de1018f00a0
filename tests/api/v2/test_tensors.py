"""Input data decodes to exactly the values written, whichever reader takes it."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.api.v2.tensors import InferInput, decode_input, parse_once, parse_request
from app.codecs import InvalidArray

_INT64 = np.iinfo(np.int64)
_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)


def _input(datatype: str, shape: tuple[int, ...], data: Any) -> InferInput:
    raw = msgspec.Raw(json.dumps(data).encode())
    return InferInput(name="logits", shape=list(shape), datatype=datatype, data=raw)


def _nested(array: np.ndarray[Any, Any], nested: bool) -> Any:
    return array.tolist() if nested else array.reshape(-1).tolist()


@given(
    array=hnp.arrays(
        np.float64,
        _SHAPES,
        elements=st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
    ),
    nested=st.booleans(),
)
def test_fp64_data_is_read_to_the_bit(array: np.ndarray[Any, Any], nested: bool) -> None:
    # json.dumps writes the shortest repr, which round-trips: the bits must come back.
    decoded = decode_input(_input("FP64", array.shape, _nested(array, nested)), b"")
    assert decoded.dtype == np.float64
    assert decoded.tobytes() == array.tobytes()


@given(
    array=hnp.arrays(np.int64, _SHAPES, elements=st.integers(_INT64.min, _INT64.max)),
    nested=st.booleans(),
)
def test_int64_data_is_read_exactly(array: np.ndarray[Any, Any], nested: bool) -> None:
    decoded = decode_input(_input("INT64", array.shape, _nested(array, nested)), b"")
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, array)


@given(values=st.lists(st.one_of(st.integers(-(2**40), 2**40), st.floats(-1e30, 1e30)), min_size=1))
def test_fp32_data_is_rounded_once_from_the_decimal(values: list[float]) -> None:
    # Mixed integers and floats: each value as float64 first (exact for these), then float32.
    decoded = decode_input(_input("FP32", (len(values),), values), b"")
    assert decoded.tobytes() == np.array(values, dtype=np.float64).astype(np.float32).tobytes()


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("INT64", [1, 2**63], r"logits\[1\]: integer out of int64 range"),
        ("INT64", [1, -(2**63) - 1], r"logits\[1\]: integer out of int64 range"),
        ("INT64", [1.0, 2.5], "must be integers"),
        ("INT32", [1, 2**31], "out of the INT32 range"),
        ("FP32", [[1.0], [2.0, 3.0]], r"logits\[1\]: ragged array"),
        ("FP32", [1.0, [2.0]], r"logits\[1\]: expected a number, got a nested array"),
        ("FP32", [1.0, 2.0, 3.0], "needs 2 values; got 3"),
    ],
)
def test_data_the_bulk_reader_declines_is_still_checked(
    datatype: str, data: Any, message: str
) -> None:
    with pytest.raises(InvalidArray, match=message):
        decode_input(_input(datatype, (2,), data), b"")


def test_non_finite_strings_take_the_codec() -> None:
    decoded = decode_input(_input("FP32", (3,), ["inf", "-inf", 1.5]), b"")
    np.testing.assert_array_equal(decoded, np.array([np.inf, -np.inf, 1.5], np.float32))


def _body(inputs: list[dict[str, Any]], **header: Any) -> bytes:
    return json.dumps({"inputs": inputs, **header}).encode()


@given(
    logits=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
        elements=st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
    ),
    nested=st.booleans(),
    extra=st.sampled_from([{}, {"id": "a"}, {"parameters": {"reduction": "sum"}}]),
)
def test_one_pass_reads_what_the_two_steps_read(
    logits: np.ndarray[Any, Any], nested: bool, extra: dict[str, Any]
) -> None:
    labels = np.arange(len(logits)) % logits.shape[1]
    body = _body(
        [
            {"name": "logits", "shape": list(logits.shape), "datatype": "FP64",
             "data": _nested(logits, nested)},
            {"name": "labels", "shape": [len(labels)], "datatype": "INT64",
             "data": labels.tolist()},
        ],
        outputs=[{"name": "loss"}],
        **extra,
    )  # fmt: skip
    once = parse_once(body)
    if once is None:  # declining is always allowed: magnitudes past 2**63 take the exact path
        assume(False)
        return
    request, values = once
    two, blobs = parse_request(body, None)
    assert (request.id, request.parameters, request.outputs) == (
        two.id,
        two.parameters,
        two.outputs,
    )
    for a, b in zip(request.inputs, two.inputs, strict=True):
        assert (a.name, a.shape, a.datatype, a.parameters) == (
            b.name,
            b.shape,
            b.datatype,
            b.parameters,
        )
    for tensor, flat, exact, blob in zip(request.inputs, values, two.inputs, blobs, strict=True):
        ours = decode_input(tensor, b"", flat)
        theirs = decode_input(exact, blob)
        assert ours.dtype == theirs.dtype
        assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_body([{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, [2]]}]),
                     id="nested-where-a-number-goes"),
        pytest.param(_body([{"name": "x", "shape": [2], "datatype": "FP32", "data": ["inf", 1]}]),
                     id="strings"),
        pytest.param(_body([{"name": "x[", "shape": [1], "datatype": "FP32", "data": [1]}]),
                     id="bracket-in-a-string"),
        pytest.param(_body([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1],
                             "parameters": {"binary_data_size": 4}}]), id="binary"),
        pytest.param(_body([{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
                           surprise=1), id="unknown-field"),
        pytest.param(b'{"inputs": [], "inputs": []}', id="key-twice"),
        pytest.param(_body([{"name": "x", "shape": [1], "datatype": "FP32"}]), id="no-data"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(b"{", id="not-json"),
    ],
)  # fmt: skip
def test_one_pass_declines_what_the_exact_path_must_word(body: bytes) -> None:
    assert parse_once(body) is None


def test_an_ordinary_body_is_read_in_one_pass() -> None:
    logits = np.random.default_rng(1).normal(size=(300, 7))
    body = _body(
        [
            {"name": "logits", "shape": [300, 7], "datatype": "FP32", "data": logits.tolist()},
            {"name": "labels", "shape": [300], "datatype": "INT64", "data": [1] * 300},
        ]
    )
    once = parse_once(body)
    assert once is not None
    np.testing.assert_array_equal(once[1][0], logits.reshape(-1))
