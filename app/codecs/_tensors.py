"""Typed tensors: ``{"dtype", "shape", "data"}`` with little-endian, C-order data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

import msgspec
import numpy as np

from app.codecs._locations import render, split
from app.codecs.errors import InvalidArray, Loc

__all__ = ["TENSOR_DTYPES", "TensorWire", "in_body", "tensor_bytes", "tensor_from_raw"]

_DType = Literal["float16", "float32", "float64", "int32", "int64"]
TENSOR_DTYPES: tuple[str, ...] = get_args(_DType)


class TensorWire(msgspec.Struct, forbid_unknown_fields=True):
    """The wire form; ``data`` is a memoryview so msgpack bin is not copied."""

    dtype: _DType
    shape: list[Annotated[int, msgspec.Meta(ge=0)]]
    data: memoryview


def tensor_from_raw(
    raw: msgspec.Raw, field: str, decode_as: Callable[[Any], Callable[[Any], Any]]
) -> np.ndarray[Any, np.dtype[Any]]:
    """Decode a tensor object without touching elements; the result may be read-only."""
    try:
        wire: TensorWire = decode_as(TensorWire)(raw)
    except msgspec.ValidationError as exc:
        raise _wire_error(exc, field) from exc
    dtype = np.dtype(wire.dtype).newbyteorder("<")
    expected = math.prod(wire.shape) * dtype.itemsize
    if wire.data.nbytes != expected:
        loc: Loc = (field, "data")
        raise InvalidArray(
            f"{render(loc)}: got {wire.data.nbytes} bytes, but shape {wire.shape} "
            f"of {wire.dtype} needs {expected}",
            loc,
        )
    try:
        return np.frombuffer(wire.data, dtype=dtype).reshape(wire.shape)
    except ValueError as exc:  # e.g. more dimensions than NumPy supports
        loc = (field, "shape")
        raise InvalidArray(f"{render(loc)}: {exc}", loc) from exc


def in_body(array: np.ndarray[Any, np.dtype[Any]], body: bytes) -> np.ndarray[Any, np.dtype[Any]]:
    """``array`` as a writeable view of ``body`` when it lies in a writeable body.

    msgspec hands out read-only views, and NumPy copies a read-only array before some
    reductions (``argmax`` along an axis asks for a writeable array), in every block's
    diagnostics (bench/README.md, design decisions). A body read in chunks is a
    bytearray of the service's own: a view of it can be writeable.
    """
    if array.flags.writeable or not isinstance(body, bytearray) or not array.size:
        return array
    start = array.ctypes.data - np.frombuffer(body, np.uint8).ctypes.data
    if not 0 <= start <= len(body) - array.nbytes or not array.flags.c_contiguous:
        return array
    return np.frombuffer(body, array.dtype, array.size, start).reshape(array.shape)


def tensor_bytes(array: np.ndarray[Any, np.dtype[Any]]) -> tuple[str, np.ndarray[Any, Any]]:
    """Return the dtype name and a little-endian C-order uint8 view of ``array``."""
    name = array.dtype.name
    if name not in TENSOR_DTYPES:
        raise TypeError(f"a Tensor must have one of the dtypes {TENSOR_DTYPES}, not {name}")
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return name, data.reshape(-1).view(np.uint8)


def _wire_error(exc: msgspec.ValidationError, field: str) -> InvalidArray:
    detail, path = split(exc)
    if not path and "field `" in detail:
        # Missing and unknown keys are reported on the object; point at the key instead.
        path = (detail.split("`")[1],)
    if detail.startswith("Object contains unknown field"):
        detail = "unknown key; a tensor has only dtype, shape and data"
    elif detail.startswith("Object missing required field"):
        detail = "missing key; a tensor needs dtype, shape and data"
    elif detail.startswith("Invalid base64"):
        detail = "data is not valid base64"
    elif detail.startswith("Invalid enum value"):
        detail = f"unsupported dtype {detail.split(' ', 3)[3]}; expected one of {TENSOR_DTYPES}"
    elif detail == "Expected `int` >= 0":
        detail = "dimensions must be integers >= 0"
    loc: Loc = (field, *path)
    return InvalidArray(f"{render(loc)}: {detail.replace('`', '')}", loc)
