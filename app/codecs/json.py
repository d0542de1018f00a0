"""JSON codec: msgspec decodes (typed, with paths), orjson encodes (NumPy-aware)."""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import numpy as np
import orjson

from app.codecs._decoding import Kind, Syntax, decode_body
from app.codecs._numbers import read_numbers
from app.codecs._plain import decode_plain
from app.codecs._rows import RowReader
from app.codecs._tensors import tensor_bytes
from app.codecs._tree import convert
from app.codecs.base import DecodedBody, Tensor

__all__ = ["JSON", "JsonCodec"]

_WHITESPACE = b" \t\r\n"
_NON_FINITE = {math.inf: "inf", -math.inf: "-inf"}
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_SEARCH_BYTES = 1 << 16


@functools.cache
def _decode_as(kind: Any) -> Callable[[Any], Any]:
    return msgspec.json.Decoder(kind).decode


def _peek(raw: memoryview) -> tuple[Kind, int]:
    rank, byte = 0, 0
    for byte in raw:
        if byte == 0x5B:  # [
            rank += 1
        elif byte not in _WHITESPACE:
            break
    if rank:
        return "array", rank
    if byte == 0x7B:  # {
        return "tensor", 0
    return ("null", 0) if byte == 0x6E else ("array", 0)  # n(ull), or a bare number/string


_SYNTAX = Syntax(
    name="JSON",
    fields=msgspec.json.Decoder(dict[str, msgspec.Raw]).decode,
    plain=msgspec.json.Decoder().decode,
    decode_as=_decode_as,
    peek=_peek,
    fast_array=read_numbers,
    fast_body=decode_plain,
)


class JsonCodec:
    """``application/json``; non-finite floats travel as the strings "inf", "-inf", "nan"."""

    media_type = "application/json"
    problem_media_type = "application/problem+json"

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        """Decode a JSON object; fields in ``array_fields`` become NumPy arrays."""
        return decode_body(body, array_fields, _SYNTAX)

    def reader(self, array_fields: frozenset[str]) -> RowReader:
        """A decoder of one body that reads its first matrix's rows as they arrive."""
        return RowReader(array_fields, self.decode)

    def encode(self, content: Mapping[str, Any]) -> bytes:
        """Encode with orjson; arrays as nested lists, tensors as base64."""
        # orjson encodes the tree itself, asking _leaf only for what it does not know
        # (bench/README.md, design decisions). The tree is rebuilt leaf by leaf when orjson
        # refuses an array (not native-endian; the rebuilt tree also words any error)
        # and when a NaN or infinity may have become null: the wire rule is a string.
        try:
            content_bytes = orjson.dumps(content, default=_leaf, option=_NUMPY)
        except TypeError:
            return orjson.dumps(convert(content, _leaf), option=_NUMPY)
        # Searching the text for null costs more than checking the arrays from 64 KiB.
        suspect = len(content_bytes) > _SEARCH_BYTES or b"null" in content_bytes
        if suspect and not _finite(content):
            return orjson.dumps(convert(content, _leaf), option=_NUMPY)
        return content_bytes


def _finite(value: Any) -> bool:
    """Whether every float in the tree (arrays included) is finite."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(_finite(item) for item in value.values())
    if kind is list or kind is tuple:
        return all(_finite(item) for item in value)
    if isinstance(value, np.ndarray | np.floating):
        return value.dtype.kind != "f" or bool(np.isfinite(value).all())
    if isinstance(value, Mapping):
        return all(_finite(item) for item in value.values())
    if isinstance(value, float):
        return math.isfinite(value)
    return True  # str, int, None, a Tensor (its bytes carry any value)


def _leaf(value: Any) -> Any:
    if isinstance(value, float):
        # orjson would write null for NaN and infinities; the wire rule is a string.
        return value if math.isfinite(value) else _NON_FINITE.get(value, "nan")
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.generic):
        return _leaf(value.item())
    if isinstance(value, Tensor):
        name, data = tensor_bytes(value.array)
        encoded = base64.b64encode(data.data).decode("ascii")
        return {"dtype": name, "shape": list(value.array.shape), "data": encoded}
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _array(array: np.ndarray[Any, np.dtype[Any]]) -> Any:
    if array.ndim == 0 or array.dtype.kind not in "biuf":
        return convert(array.tolist(), _leaf)
    if array.dtype.kind == "f":
        if array.dtype.itemsize > 8:  # longdouble: orjson knows float16/32/64 only
            array = array.astype(np.float64)
        if not np.isfinite(array).all():
            return _with_strings(array)
    # orjson serialises native-endian C-contiguous arrays itself, far faster than lists.
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def _with_strings(array: np.ndarray[Any, np.dtype[Any]]) -> Any:
    cells = array.astype(object)
    cells[np.isnan(array)] = "nan"
    cells[array == math.inf] = "inf"
    cells[array == -math.inf] = "-inf"
    return cells.tolist()


JSON = JsonCodec()
