"""Typed tensors: decoded without per-element work; every malformed part has its loc."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import numpy as np
import pytest

from app.codecs import JSON, MSGPACK, Codec, InvalidArray
from tests.codecs.conftest import ARRAY_FIELDS, body_for


def _tensor(codec: Codec, dtype: str, shape: list[int], data: bytes, **extra: Any) -> Any:
    wire: Any = base64.b64encode(data).decode() if codec is JSON else data
    return {"dtype": dtype, "shape": shape, "data": wire, **extra}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64"])
def test_tensor_decodes_little_endian_c_order(codec: Codec, dtype: str):
    expected = np.arange(6, dtype=dtype).reshape(2, 3)
    data = expected.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    body = body_for(codec, {"logits": _tensor(codec, dtype, [2, 3], data)})
    decoded = codec.decode(body, ARRAY_FIELDS).arrays["logits"]
    assert decoded.tensor
    assert decoded.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded.array, expected)


def test_msgpack_tensor_is_a_view_of_the_body():
    data = np.arange(4, dtype="<f8").tobytes()
    body = msgspec.msgpack.encode({"logits": _tensor(MSGPACK, "float64", [4], data)})
    array = MSGPACK.decode(body, ARRAY_FIELDS).arrays["logits"].array
    assert not array.flags.owndata
    assert not array.flags.writeable


def test_a_msgpack_tensor_in_a_bytearray_body_is_a_writeable_view_of_it():
    # A body read in chunks is a bytearray; NumPy copies read-only arrays for argmax.
    data = np.arange(12, dtype="<f4").tobytes()
    content = {"logits": _tensor(MSGPACK, "float32", [3, 4], data), "labels": [0, 1, 2]}
    body = bytearray(msgspec.msgpack.encode(content))
    array = MSGPACK.decode(body, ARRAY_FIELDS).arrays["logits"].array  # type: ignore[arg-type]
    assert array.flags.writeable
    assert np.shares_memory(array, np.frombuffer(body, np.uint8))
    np.testing.assert_array_equal(array, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert array.dtype == np.dtype("<f4")


def test_empty_and_rank0_tensors(codec: Codec):
    body = body_for(
        codec,
        {
            "logits": _tensor(codec, "float32", [0, 5], b""),
            "pos_weight": _tensor(codec, "float64", [], np.float64(2.0).tobytes()),
        },
    )
    arrays = codec.decode(body, ARRAY_FIELDS).arrays
    assert arrays["logits"].array.shape == (0, 5)
    assert arrays["pos_weight"].array.shape == ()
    assert arrays["pos_weight"].array == 2.0


GOOD = np.zeros(4, dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("fields", "loc", "message"),
    [
        pytest.param({"dtype": "float8"}, ("logits", "dtype"), "unsupported dtype", id="dtype"),
        pytest.param({"dtype": 32}, ("logits", "dtype"), "Expected str", id="dtype-type"),
        pytest.param({"shape": [2, -2]}, ("logits", "shape", 1), ">= 0", id="negative-dim"),
        pytest.param({"shape": [2.0, 2]}, ("logits", "shape", 0), "Expected int", id="float-dim"),
        pytest.param({"shape": [True]}, ("logits", "shape", 0), "Expected int", id="bool-dim"),
        pytest.param({"shape": 4}, ("logits", "shape"), "Expected array", id="shape-scalar"),
        pytest.param({"shape": [5]}, ("logits", "data"), "got 16 bytes", id="too-few-bytes"),
        pytest.param({"shape": [3]}, ("logits", "data"), "needs 12", id="too-many-bytes"),
        pytest.param({"extra": 1}, ("logits", "extra"), "unknown key", id="unknown-key"),
        pytest.param({"shape": [0] + [1] * 70}, ("logits", "shape"), "", id="too-many-dims"),
    ],
)
def test_tensor_rejections(codec: Codec, fields: dict[str, Any], loc: Any, message: str):
    if "shape" in fields and fields["shape"] == [0] + [1] * 70:
        fields = {**fields, "data": b"" if codec is MSGPACK else ""}
    content = {**_tensor(codec, "float32", [4], GOOD), **fields}
    with pytest.raises(InvalidArray) as info:
        codec.decode(body_for(codec, {"logits": content}), ARRAY_FIELDS)
    assert info.value.loc == loc
    assert message in info.value.message


@pytest.mark.parametrize("key", ["dtype", "shape", "data"])
def test_tensor_missing_key(codec: Codec, key: str):
    content = _tensor(codec, "float32", [4], GOOD)
    del content[key]
    with pytest.raises(InvalidArray, match="missing key") as info:
        codec.decode(body_for(codec, {"logits": content}), ARRAY_FIELDS)
    assert info.value.loc == ("logits", key)


def test_json_tensor_invalid_base64():
    content = {"dtype": "float32", "shape": [1], "data": "AAA"}
    with pytest.raises(InvalidArray, match="not valid base64") as info:
        JSON.decode(body_for(JSON, {"logits": content}), ARRAY_FIELDS)
    assert info.value.loc == ("logits", "data")


def test_msgpack_tensor_data_must_be_bin():
    content = {"dtype": "float32", "shape": [1], "data": "AAAAAA=="}
    with pytest.raises(InvalidArray) as info:
        MSGPACK.decode(body_for(MSGPACK, {"logits": content}), ARRAY_FIELDS)
    assert info.value.loc == ("logits", "data")
