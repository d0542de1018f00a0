"""Reading request bodies under a size limit, straight from the ASGI ``receive`` channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast

from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

__all__ = ["BodyTimeout", "BodyTooLarge", "OnData", "read_body"]


class BodyTooLarge(Exception):
    """The body is larger than the configured limit."""

    def __init__(self, limit: int, size: int | None) -> None:
        seen = f"{size} bytes" if size is not None else "more"
        super().__init__(f"request body exceeds the limit of {limit} bytes (got {seen})")
        self.limit = limit
        self.size = size


class BodyTimeout(Exception):
    """The body stopped arriving, or arrived too slowly (the server's body timeout)."""

    def __init__(self, idle: float, rate: int) -> None:
        pace = f", or slower than {rate} bytes/s after that" if rate else ""
        super().__init__(f"the request body stalled: no byte for {idle:g} s{pace}")


# Called with the body's buffer and how much of it has arrived, after each chunk.
OnData = Callable[[bytearray, int], None]


async def read_body(
    receive: Receive, declared: str | None, limit: int, on_data: OnData | None = None
) -> bytes:
    """Return the body; refuse from Content-Length first, then stop reading past the limit.

    ``declared`` is the Content-Length header as sent (None for a chunked body).
    ``on_data`` sees a body of declared length that comes in several chunks as it fills.
    """
    if declared is not None and declared.isascii() and declared.isdigit():
        size = int(declared)
        if size > limit:
            raise BodyTooLarge(limit, size)
        first = await _message(receive)
        chunk: bytes = first.get("body", b"")
        if not first.get("more_body", False):
            # All of it in one message, as every small body comes: no buffer, no copy
            # (an async generator, a buffer and a copy were 10 us of a [64, 10] request).
            if len(chunk) > size:
                raise BodyTooLarge(size, len(chunk))
            return chunk
        return await _read_into(receive, size, chunk, on_data)
    chunks: list[bytes] = []
    size = 0
    async for chunk in _chunks(receive):
        size += len(chunk)
        if size > limit:
            # A chunked body announces no length: stop at the first byte past the limit.
            raise BodyTooLarge(limit, None)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _message(receive: Receive) -> Message:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect
    return message


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    # Starlette's Request.stream() without the Request: scoring routes are plain ASGI.
    while True:
        message = await _message(receive)
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _read_into(receive: Receive, size: int, first: bytes, on_data: OnData | None) -> bytes:
    # The length is known: fill one buffer in place. Joining chunks would hold the body
    # twice at the end, which made reading the peak of a large request's memory.
    buffer = bytearray(size)
    at = 0
    with memoryview(buffer) as view:
        async for chunk in _chunks_after(first, receive):
            end = at + len(chunk)
            if end > size:  # the HTTP parser frames by Content-Length; never trust it blindly
                raise BodyTooLarge(size, end)
            view[at:end] = chunk
            at = end
            if on_data is not None:
                on_data(buffer, at)
    if at < size:
        del buffer[at:]
    # Typed as bytes: every consumer (msgspec, zlib, NumPy, slicing) reads any buffer, and
    # bytes(buffer) would be the very copy this avoids. Tensors over it are writable.
    return cast(bytes, buffer)


async def _chunks_after(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in _chunks(receive):
        yield chunk
