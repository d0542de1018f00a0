"""Reading request bodies under a size limit."""

from __future__ import annotations

from starlette.requests import Request

__all__ = ["BodyTooLarge", "read_body"]


class BodyTooLarge(Exception):
    """The body is larger than the configured limit."""

    def __init__(self, limit: int, size: int | None) -> None:
        seen = f"{size} bytes" if size is not None else "more"
        super().__init__(f"request body exceeds the limit of {limit} bytes (got {seen})")
        self.limit = limit
        self.size = size


async def read_body(request: Request, limit: int) -> bytes:
    """Return the body; refuse from Content-Length first, then stop reading past the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            # A chunked body announces no length: stop at the first byte past the limit.
            raise BodyTooLarge(limit, None)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
