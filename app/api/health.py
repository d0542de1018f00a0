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
    responses={503: {"description": "Starting, draining, or unable to take work now"}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when this worker takes new requests; 503 while starting, draining, or full."""
    reason = request.app.state.capacity.not_ready()
    if reason is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "not ready", "reason": reason}, status_code=503, headers={"Retry-After": "1"}
    )
