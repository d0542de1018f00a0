"""Read msgpack nested arrays of same-width floats straight into NumPy.

msgspec and msgpack-python write every Python float as 0xcb + 8 bytes, so a float64
matrix sent as lists has a fixed layout: array headers, then tag + payload per element.
When the bytes match that layout exactly, a few vectorised checks and one copy replace a
Python float object per element (about 10x faster). Anything else returns None and takes
the general path, which also produces the error messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["array_header", "unpack_floats"]

_FORMS: dict[int, np.dtype[Any]] = {0xCB: np.dtype(">f8"), 0xCA: np.dtype(">f4")}


def unpack_floats(raw: memoryview) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """float64 array from uniform nested msgpack arrays of one float width, else None."""
    data = np.frombuffer(raw, dtype=np.uint8)
    shape: list[int] = []
    headers: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
    at = 0
    # The first element at each depth gives the shape and the header every row must repeat.
    while (header := array_header(raw, at)) is not None:
        size, length = header
        if not length:
            return None  # empty arrays are cheap either way
        shape.append(length)
        headers.append(data[at : at + size])
        at += size
    form = _FORMS.get(raw[at])
    if not shape or form is None:
        return None
    width = 1 + form.itemsize
    expected = width
    for length, head in zip(reversed(shape), reversed(headers), strict=True):
        expected = head.size + length * expected
    if expected != data.size:
        return None
    block = data.reshape(1, -1)
    for length, head in zip(shape, headers, strict=True):
        if not (block[..., : head.size] == head).all():
            return None
        block = block[..., head.size :]
        block = block.reshape((*block.shape[:-1], length, block.shape[-1] // length))
    if not (block[..., 0] == raw[at]).all():
        return None
    payload = np.ascontiguousarray(block[..., 1:]).view(form).reshape(shape)
    return np.asarray(payload, dtype=np.float64)


def array_header(raw: memoryview, at: int) -> tuple[int, int] | None:
    """(header size, length) of the msgpack array header at ``at``, or None if none is there."""
    byte = raw[at]
    if 0x90 <= byte <= 0x9F:
        return 1, byte & 0x0F
    if byte == 0xDC:
        return 3, int.from_bytes(raw[at + 1 : at + 3], "big")
    if byte == 0xDD:
        return 5, int.from_bytes(raw[at + 1 : at + 5], "big")
    return None
