"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """Answers while the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness",
    responses={503: {"description": "Starting or draining"}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when this worker takes new requests; 503 while starting or draining."""
    if request.app.state.readiness.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready"}, status_code=503, headers={"Retry-After": "1"})
