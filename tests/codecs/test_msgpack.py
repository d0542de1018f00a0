"""What the msgpack wire looks like: native floats, bin tensors; and the bulk paths."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.codecs import JSON, MSGPACK, InvalidArray, Tensor, encode_parts
from app.codecs._packing import pack_array
from app.codecs._unpacking import unpack_floats
from tests.codecs.conftest import ARRAY_FIELDS


def _wire(content: dict[str, Any]) -> Any:
    return msgspec.msgpack.decode(MSGPACK.encode(content))


def test_media_types():
    assert MSGPACK.media_type == "application/msgpack"
    assert MSGPACK.problem_media_type == "application/msgpack"


def test_non_finite_floats_are_native():
    wire = _wire({"x": math.nan, "a": np.array([np.inf, -np.inf], dtype=np.float32)})
    assert math.isnan(wire["x"])
    assert wire["a"] == [math.inf, -math.inf]


def test_integer_arrays_stay_integers():
    assert _wire({"x": np.array([[1, -2]], dtype=np.int16)}) == {"x": [[1, -2]]}


def test_arrays_without_a_fixed_width_form_go_through_lists():
    wire = _wire({"b": np.array([True, False]), "u": np.array([2**64 - 1], dtype=np.uint64)})
    assert wire == {"b": [True, False], "u": [2**64 - 1]}


def test_tensor_data_is_bin():
    wire = _wire({"t": Tensor(np.arange(3, dtype=np.int32))})["t"]
    assert wire == {
        "dtype": "int32",
        "shape": [3],
        "data": np.arange(3, dtype="<i4").tobytes(),
    }


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((), id="rank0"),
        pytest.param((15,), id="fixarray"),
        pytest.param((16, 3), id="array16"),
        pytest.param((2, 70_000), id="array32"),
        pytest.param((2, 0), id="empty-rows"),
        pytest.param((0, 2), id="empty"),
        pytest.param((2, 3, 4), id="rank3"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int64, np.uint8])
def test_packed_arrays_read_as_standard_msgpack(shape: Any, dtype: Any):
    array = (np.arange(math.prod(shape)) % 100).reshape(shape).astype(dtype)
    packed = pack_array(array)
    assert packed is not None
    assert msgspec.msgpack.decode(packed.tobytes()) == array.tolist()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param([[0.5, 1.5], [2.5, 3.5]], id="float64"),
        pytest.param([[[0.5]] * 3] * 17, id="rank3-array16"),
        pytest.param([0.25] * 70_000, id="array32"),
    ],
)
def test_unpacking_matches_the_typed_path(content: Any):
    body = msgspec.msgpack.encode(content)
    fast = unpack_floats(memoryview(body))
    assert fast is not None
    np.testing.assert_array_equal(fast, np.array(content))


def test_unpacking_reads_float32_cells():
    packed = pack_array(np.array([0.5, -1.0], np.float32))
    assert packed is not None
    body = msgspec.msgpack.encode(msgspec.Raw(packed.tobytes()))
    np.testing.assert_array_equal(unpack_floats(memoryview(body)), [0.5, -1.0])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(msgspec.msgpack.encode([]), id="empty"),
        pytest.param(msgspec.msgpack.encode(1.5), id="scalar"),
        pytest.param(msgspec.msgpack.encode([1, 2]), id="ints"),
        pytest.param(msgspec.msgpack.encode([1.5, 2]), id="float-then-int"),
        pytest.param(msgspec.msgpack.encode([[1.5, 2.5], [3.5]]), id="ragged-shorter"),
        pytest.param(msgspec.msgpack.encode([[1.5], [2.5, 3.5]]), id="ragged-longer"),
        pytest.param(
            msgspec.msgpack.encode([[0.5, 1.5], [2.5], [3.5, 4.5, 5.5]]), id="ragged-same-size"
        ),
        pytest.param(msgspec.msgpack.encode([[1.5, 2.5], [3.5, "nan"]]), id="string"),
        pytest.param(b"\x92\xcb" + bytes(8) + b"\xca" + bytes(8), id="mixed-width"),
        pytest.param(b"\x92\xcb" + bytes(8) + b"\xcb" + bytes(8), id="valid-control"),
    ],
)
def test_unpacking_declines_other_layouts(body: bytes):
    fast = unpack_floats(memoryview(body))
    if body.startswith(b"\x92\xcb" + bytes(8) + b"\xcb"):
        assert fast is not None  # the control case: same bytes, uniform widths
    else:
        assert fast is None


@pytest.mark.parametrize(
    ("logits", "loc"),
    [
        pytest.param([[1.5, 2.5], [3.5, True]], ("logits", 1, 1), id="bool"),
        pytest.param([[0.5, 1.5], [2.5], [3.5, 4.5, 5.5]], ("logits", 1), id="ragged-same-size"),
    ],
)
def test_decode_falls_back_and_still_reports_the_loc(logits: Any, loc: Any):
    body = msgspec.msgpack.encode({"logits": logits})
    with pytest.raises(InvalidArray) as info:
        MSGPACK.decode(body, ARRAY_FIELDS)
    assert info.value.loc == loc


@pytest.mark.parametrize("alias", ["application/x-msgpack", "application/vnd.msgpack"])
def test_aliases_share_the_codec(alias: str):
    from app.codecs import codec_for_content_type

    assert codec_for_content_type(alias) is MSGPACK


def test_unsupported_values_raise_type_error():
    with pytest.raises(TypeError):
        MSGPACK.encode({"x": object()})


def _joined(parts: list[Any]) -> bytes:
    return b"".join(bytes(part) for part in parts)


@given(
    st.lists(
        st.tuples(st.sampled_from(["float32", "float64", "int64", "int32"]), st.integers(0, 9000)),
        max_size=4,
    ),
    st.integers(0, 3),
)
def test_parts_join_to_the_whole_encoding(tensors: list[tuple[str, int]], small: int) -> None:
    import app.codecs.msgpack as module

    content: dict[str, Any] = {"loss": 0.5, "nested": {"x": Tensor(np.arange(3.0))}}
    for i, (dtype, size) in enumerate(tensors):
        content[f"t{i}"] = Tensor(np.arange(size).astype(dtype))
    content["tail"] = [1, 2, 3]
    original = module._SPLICE_BYTES
    module._SPLICE_BYTES = [1, 100, 300, 70000][small]  # small tensors are spliced too
    try:
        parts = MSGPACK.encode_parts(content)
    finally:
        module._SPLICE_BYTES = original
    assert _joined(parts) == MSGPACK.encode(content)


def test_a_big_tensor_is_sent_from_its_own_memory() -> None:
    array = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)  # 2 MiB
    content = {"loss": 1.0, "probs": Tensor(array), "per_sample": Tensor(array[:, 0].copy())}
    parts = MSGPACK.encode_parts(content)
    assert _joined(parts) == MSGPACK.encode(content)
    assert len(parts) == 3
    assert np.shares_memory(np.frombuffer(parts[1], np.uint8), array)
    assert sum(map(len, parts)) == len(MSGPACK.encode(content))


def test_json_has_one_part() -> None:
    content = {"probs": Tensor(np.zeros((600, 600), np.float32))}
    assert encode_parts(JSON, content) == [JSON.encode(content)]
