"""The codec contract: bytes <-> plain Python values and NumPy arrays.

A codec never sees the web stack. It decodes a request body into options (plain Python,
validated later by the API's models) and arrays (NumPy, never element by element
through pydantic), and encodes a response tree back to bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = [
    "Buffer",
    "Codec",
    "DecodedArray",
    "DecodedBody",
    "Decoder",
    "ReadAhead",
    "Tensor",
    "invalid_utf8",
]


def invalid_utf8(text: bytes) -> str | None:
    """Where and why ``text`` is not UTF-8 ("at byte 7: invalid start byte (b'\\xff')"),
    or None when it is. Run on error paths only: it decodes the whole text."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"at byte {exc.start}: {exc.reason} ({bytes(text[exc.start : exc.end])!r})"
    return None


@dataclass(frozen=True)
class DecodedArray:
    """An array field: ``tensor`` is True when it came as a typed binary tensor."""

    array: np.ndarray[Any, np.dtype[Any]]
    tensor: bool


@dataclass(frozen=True)
class DecodedBody:
    """A decoded request: plain option values and NumPy arrays, by field name."""

    options: dict[str, Any]
    arrays: dict[str, DecodedArray]


# A piece of an encoded body: bytes, or a byte view (format "B") of memory owned elsewhere.
Buffer = bytes | memoryview


class Tensor:
    """Marks an array to be encoded as a typed tensor (dtype, shape, little-endian data).

    Not a dataclass: orjson and msgspec encode dataclasses field by field themselves,
    and the encoders must hand a Tensor to the codec's hook instead.
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray[Any, np.dtype[Any]]) -> None:
        self.array = array


class Decoder(Protocol):
    """What decodes a request body: a codec, or a reader of one body that has seen it come."""

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        """Decode a top-level object; fields named in ``array_fields`` become arrays."""
        ...


class ReadAhead(Decoder, Protocol):
    """A decoder of one body that can start on it while it arrives."""

    def feed(self, body: bytearray, end: int) -> None:
        """``body[:end]`` has arrived (the rest of ``body`` is not yet written)."""
        ...


class Codec(Protocol):
    """One media type's decoder and encoder."""

    media_type: str
    problem_media_type: str

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        """Decode a top-level object; fields named in ``array_fields`` become arrays."""
        ...

    def encode(self, content: Mapping[str, Any]) -> bytes:
        """Encode a tree of dicts, lists, scalars, None, ndarrays and :class:`Tensor`."""
        ...
