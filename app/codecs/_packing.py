"""Write NumPy arrays as msgpack nested arrays without a Python object per element.

Every element gets the fixed-width msgpack form (0xcb + 8 bytes for float64, 0xca + 4 for
float32, 0xd3 + 8 for integers), so the whole body is a few vectorised copies; readers
decode it like any other msgpack. ``arr.tolist()`` and an encoder build a Python object
per element, which is what this avoids (bench/README.md, design decisions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pack_array"]

_FORMS: dict[str, tuple[int, str]] = {
    "f2": (0xCA, ">f4"),  # msgpack has no float16; float32 holds every float16 exactly
    "f4": (0xCA, ">f4"),
    "f8": (0xCB, ">f8"),
    "i1": (0xD3, ">i8"),
    "i2": (0xD3, ">i8"),
    "i4": (0xD3, ">i8"),
    "i8": (0xD3, ">i8"),
    "u1": (0xD3, ">i8"),
    "u2": (0xD3, ">i8"),
    "u4": (0xD3, ">i8"),
}


def pack_array(array: np.ndarray[Any, np.dtype[Any]]) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
    """msgpack bytes of ``array`` as nested arrays, or None for dtypes without a fixed form."""
    form = _FORMS.get(f"{array.dtype.kind}{array.dtype.itemsize}")
    if form is None:
        return None
    tag, wire = form
    shape = array.shape
    headers = [np.frombuffer(_header(length), dtype=np.uint8) for length in shape]
    size = 1 + np.dtype(wire).itemsize
    for length, header in zip(reversed(shape), reversed(headers), strict=True):
        size = header.size + length * size
    packed = np.empty(size, dtype=np.uint8)
    # Fill one buffer through strided views: each axis is a header followed by its rows.
    block = packed.reshape(1, size)
    for length, header in zip(shape, headers, strict=True):
        block[..., : header.size] = header
        block = block[..., header.size :]
        row = block.shape[-1] // length if length else 0
        block = block.reshape((*block.shape[:-1], length, row))
    if array.size:  # an empty axis leaves no element cells to fill
        block[..., 0] = tag
        big_endian = np.ascontiguousarray(array, dtype=wire)
        block[..., 1:] = big_endian.reshape((*shape, 1)).view(np.uint8)
    return packed


def _header(length: int) -> bytes:
    if length < 16:
        return bytes([0x90 | length])
    if length < 2**16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")
