"""The no-op echo: returns the body it read, through the same FastAPI + uvicorn stack.

Its time is the transport's floor for a body of that size: receive, one response write.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/v1/cross-entropy")
async def cross_entropy(request: Request) -> Response:
    body = await request.body()
    media_type = request.headers.get("content-type", "application/octet-stream")
    return Response(body, media_type=media_type)
