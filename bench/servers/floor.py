"""The tightest echo: plain ASGI, the body read into one buffer and sent back in one message.

``echo`` goes through FastAPI's ``Request.body()`` (a list of chunks, then a join); this
reads as the service does (one buffer of the declared length), so its time is the floor
of what uvicorn itself costs for a body: receive it, write it back.
"""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return
    headers = dict(scope["headers"])
    size = int(headers.get(b"content-length", b"0"))
    if scope["method"] == "GET":  # readiness probe of the benchmark
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    buffer, at = bytearray(size), 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        buffer[at : at + len(chunk)] = chunk
        at += len(chunk)
        if not message.get("more_body", False):
            break
    media = headers.get(b"content-type", b"application/octet-stream")
    response = [(b"content-type", media), (b"content-length", str(at).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": response})
    await send({"type": "http.response.body", "body": buffer if at == size else buffer[:at]})
