"""Read the rows of a large JSON body's first 2-D array while the body is still arriving.

Read first and parsed whole afterwards, a large JSON body costs its reading and
simdjson's parse one after the other, the parse holding the GIL throughout
(bench/README.md, design decisions). :class:`RowReader` parses the complete rows of the
body's first ``[[`` array a block at a time as the bytes come in, so the parse overlaps
the client's sending. Each block is parsed as ``[`` + its rows + ``]`` by
:func:`read_numbers`, with the same checks as a whole array, in place in the body's
buffer: the byte before and the byte after the rows are written over for the parse and
put back, so the buffer is unchanged once ``feed`` returns.

The reader only ever shortens the work of the full decoder, never replaces its rules:
:meth:`RowReader.decode` splices ``null`` where the array was, decodes that much
smaller body with the codec's own decoder, and puts the array in. Anything it cannot
vouch for (a key it cannot read, a prefix that does not leave the array at the top
level, rows that are not numbers, blocks of mixed int/float type, the rest of the body
failing to decode) sends the whole body to the full decoder, which words any error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from app.codecs._numbers import read_numbers
from app.codecs.base import DecodedArray, DecodedBody

__all__ = ["RowReader"]

# Parse once this much text has come in: simdjson holds the GIL either way, and a step
# this size holds it briefly, where a whole-body parse held it throughout (bench/README.md).
STEP_BYTES = 1 << 20
# The array must begin within this many bytes for the reader to take it.
PREFIX_BYTES = 1 << 20
_SEPARATOR = re.compile(rb"[ \t\r\n]*,[ \t\r\n]*")
_WHITESPACE = b" \t\r\n"
_DECODE_PREFIX = msgspec.json.Decoder().decode


class RowReader:
    """Incremental reader of one body; ``feed`` as bytes arrive, then ``decode``.

    Args:
        array_fields: The fields that hold arrays; only those are read early.
        decode: The full decoder, ``decode(body, array_fields)``.
    """

    def __init__(
        self,
        array_fields: frozenset[str],
        decode: Callable[[bytes, frozenset[str]], DecodedBody],
    ) -> None:
        self._fields = array_fields
        self._decode = decode
        self._state = "seek"  # -> "rows" -> "tail"; "off" once it cannot help
        self._searched = 0  # where the next search for "[[", then for "]", begins
        self._start = -1  # the array's opening '['
        self._key = ""
        self._next = -1  # where the rows not yet read begin
        self._blocks: list[np.ndarray[Any, np.dtype[Any]]] = []

    def feed(self, body: bytearray, end: int) -> None:
        """``body[:end]`` has arrived: read what complete rows it holds past the last step."""
        if self._state == "seek":
            self._seek(body, end)
        if self._state == "rows" and end - self._next >= STEP_BYTES:
            # Only the bytes not searched before: a row longer than a step must not be
            # searched again at every chunk (quadratic in the row's length).
            last = body.rfind(b"]", max(self._next, self._searched), end)
            self._searched = end
            # Past the array's end (or an error): decode() reads the rest. _read has
            # turned the reader off if the rows can never be taken.
            if last >= 0 and not self._read(body, self._next, last + 1) and self._state == "rows":
                self._state = "tail"

    def decode(self, body: bytes, array_fields: frozenset[str]) -> DecodedBody:
        """The decoded body, from the rows read so far and the rest of ``body``.

        ``array_fields`` must be the reader's own (the signature is a codec's decode).
        """
        decoded = self._finish(body) if self._state in ("rows", "tail") else None
        return decoded if decoded is not None else self._decode(body, array_fields)

    def _seek(self, body: bytearray, end: int) -> None:
        found = body.find(b"[[", max(0, self._searched - 1), end)
        if found < 0:
            self._searched = end
            if end > PREFIX_BYTES:
                self._state = "off"
            return
        if found + 2 >= end:  # the byte after "[[" tells a matrix from deeper nesting
            self._searched = found
            return
        key = _key_before(body, found)
        if (
            key is None
            or key not in self._fields  # not an array field
            or body[found + 2] == 0x5B  # deeper than a matrix
            or not _top_level(body, found, key)
        ):
            self._state = "off"
        else:
            self._state, self._start, self._key, self._next = "rows", found, key, found + 1

    def _read(self, body: bytes | bytearray, start: int, stop: int) -> bool:
        """Read the rows in ``body[start:stop]`` (a separator first, unless the first)."""
        if self._blocks:
            separator = _SEPARATOR.match(body, start, stop)
            if separator is None:
                return False
            start = separator.end()
        if start < 1 or stop >= len(body) or not isinstance(body, bytearray):
            return False
        # Parsed in place as "[" + rows + "]": the bytes on either side of the rows (the
        # array's "[" or a separator; a separator, "]" or bytes not yet arrived) are
        # written over for the parse and put back: no copy of each block (bench/README.md).
        around = body[start - 1], body[stop]
        body[start - 1], body[stop] = 0x5B, 0x5D
        try:
            with memoryview(body) as view:
                block = read_numbers(view[start - 1 : stop + 1])
        finally:
            body[start - 1], body[stop] = around
        if block is None:
            return False
        first = self._blocks[0] if self._blocks else block
        if block.ndim != 2 or block.shape[1] != first.shape[1] or block.dtype != first.dtype:
            # Ragged, or mixed int/float (the whole array decides its type): hopeless.
            self._state = "off"
            return False
        self._blocks.append(block)
        self._next = stop
        return True

    def _finish(self, body: bytes) -> DecodedBody | None:
        # The rows after the last step end at "]]" (compact JSON; otherwise the block
        # parse fails and the full decoder takes over).
        close = body.find(b"]]", self._next - 1)
        if close < 0 or (close + 1 > self._next and not self._read(body, self._next, close + 1)):
            return None
        if not self._blocks:
            return None
        array = self._blocks[0] if len(self._blocks) == 1 else np.concatenate(self._blocks)
        self._blocks = []
        view = memoryview(body)
        rest = b"".join((view[: self._start], b"null", view[close + 2 :]))
        try:
            decoded = self._decode(rest, self._fields)
        except (ValueError, RecursionError):
            return None  # the body's own error: the full decoder words it, with its offsets
        if self._key in decoded.arrays or self._key not in decoded.options:
            return None
        del decoded.options[self._key]  # null, where the array was spliced out
        decoded.arrays[self._key] = DecodedArray(array, False)
        return decoded


def _key_before(body: bytearray, at: int) -> str | None:
    """The key of the ``"key":`` that ends right before ``at``, if it has no escapes."""
    i = at - 1
    while i >= 0 and body[i] in _WHITESPACE:
        i -= 1
    if i < 0 or body[i] != 0x3A:  # :
        return None
    i -= 1
    while i >= 0 and body[i] in _WHITESPACE:
        i -= 1
    if i < 1 or body[i] != 0x22:  # "
        return None
    opening = body.rfind(b'"', 0, i)
    raw = bytes(body[opening + 1 : i])
    if opening < 0 or b"\\" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _top_level(body: bytearray, at: int, key: str) -> bool:
    """Whether the text before ``at`` is an object's start whose last key is ``key``.

    It is when that text followed by ``null}`` is a JSON object with ``key`` null: the
    array then is a value of the top-level object, not inside a string or a nested one.
    """
    if at > PREFIX_BYTES:
        return False
    try:
        prefix = _DECODE_PREFIX(bytes(body[:at]) + b"null}")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False
    return type(prefix) is dict and key in prefix and prefix[key] is None
