"""gzip / deflate request bodies (``Content-Encoding``), decoded under a size limit.

Decoding is streamed: ``zlib.decompressobj`` with ``max_length`` never produces more than
the limit plus one block, so a zip bomb costs its compressed size and the limit, no more.
"""

from __future__ import annotations

import zlib

from app.codecs.errors import DecompressedTooLarge, MalformedBody, UnsupportedEncoding

__all__ = ["inflate", "is_identity"]

# wbits per coding: gzip; "deflate" is zlib-wrapped per RFC 9110, raw deflate tolerated.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_BLOCK = 1 << 20
_IDENTITY = ("", "identity")  # after strip() and lower()


def is_identity(coding: str | None) -> bool:
    """Whether a ``Content-Encoding`` header (None when absent) leaves the body as sent."""
    return coding is None or coding.strip().lower() in _IDENTITY


def inflate(body: bytes, coding: str, limit: int) -> bytes:
    """The decoded body; raise DecompressedTooLarge past ``limit``, MalformedBody if corrupt."""
    coding = coding.strip().lower()
    if coding in _IDENTITY:
        return body
    wbits = _WBITS.get(coding)
    if wbits is None:
        raise UnsupportedEncoding(
            f"Content-Encoding {coding!r} is not supported; use gzip, deflate or identity"
        )
    try:
        return _inflate(body, wbits, limit)
    except zlib.error as exc:
        if coding != "deflate":
            raise MalformedBody(f"invalid {coding} body: {exc}") from exc
        try:  # some clients send raw deflate without the zlib wrapper
            return _inflate(body, -zlib.MAX_WBITS, limit)
        except zlib.error as raw_exc:
            raise MalformedBody(f"invalid deflate body: {raw_exc}") from raw_exc


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    data = body
    while not decoder.eof:
        # Never ask for more than one byte past the limit: that byte proves it is exceeded.
        part = decoder.decompress(data, min(_BLOCK, limit - size + 1))
        size += len(part)
        if size > limit:
            raise DecompressedTooLarge(f"request body inflates past the limit of {limit} bytes")
        data = decoder.unconsumed_tail
        if not part and not data:
            break  # input exhausted before the end of the stream
        parts.append(part)
    if not decoder.eof:
        raise zlib.error("truncated stream")
    if decoder.unused_data:
        raise zlib.error("data after the end of the compressed stream")
    return parts[0] if len(parts) == 1 else b"".join(parts)
