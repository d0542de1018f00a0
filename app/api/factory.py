"""``create_app(settings)``: the FastAPI application, its routes and error handlers."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

import app as package
from app.api.errors import install_error_handlers
from app.api.lifecycle import Readiness, lifespan_for
from app.api.openapi import build_openapi
from app.api.operations import install_operations
from app.api.routes import health, scoring
from app.api.routes import metrics as metric_routes
from app.api.v2 import router as v2_router
from app.core import LossOptions, score_cross_entropy
from app.settings import Settings, get_settings

__all__ = ["create_app"]

DESCRIPTION = """\
Numerically stable cross-entropy, softmax and diagnostics for model evaluation.

Every body is JSON (`application/json`) or msgpack (`application/msgpack`); any array may
be a typed tensor `{"dtype", "shape", "data"}` of little-endian bytes. Errors are RFC 9457
problem details whose `errors` name the field and index.
"""


_NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def _warm_up() -> None:
    # The first NumPy call of a process pays for lazy imports and allocator set-up;
    # pay it before reporting ready rather than on a user's request.
    logits = np.array([[1.0, 2.0, 3.0]])
    score_cross_entropy(logits, np.array([2]), LossOptions(outputs=frozenset({"probs"})))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; tests pass their own settings."""
    settings = settings or get_settings()
    readiness = Readiness()
    app = FastAPI(
        title="Scorer",
        version=package.__version__,
        description=DESCRIPTION,
        lifespan=lifespan_for(readiness, settings.drain_seconds, _warm_up),
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.readiness = readiness
    # Plain ASGI routes first: the router tries routes in order.
    app.router.routes[:0] = scoring.routes()
    app.include_router(metric_routes.router)
    app.include_router(health.router)
    app.include_router(v2_router)
    install_error_handlers(app)
    # Added first, so innermost: every operational layer below still wraps the scoring routes.
    app.add_middleware(scoring.ScoringLane)
    install_operations(app, settings)

    def openapi() -> dict[str, Any]:
        return build_openapi(app, scoring.openapi_paths())

    app.openapi = openapi  # type: ignore[method-assign]
    return app
