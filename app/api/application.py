"""``create_app(settings)``: the application, its routes, error handlers and middleware."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware

import app as package
from app.api import health, metrics, scoring
from app.api.backpressure import Admission, Capacity
from app.api.errors import install_error_handlers
from app.api.grpc.server import GrpcServer
from app.api.lifecycle import Readiness, lifespan_for
from app.api.openapi import build_openapi
from app.api.pipeline import Limits
from app.api.security import BearerAuth
from app.api.v2 import infer_lane
from app.api.v2 import router as v2_router
from app.api.v2.schemas import MODELS as V2_MODELS
from app.core import LossOptions, score_cross_entropy
from app.observability import ObservabilityMiddleware, configure_logging, prometheus_endpoint
from app.settings import Settings, get_settings

__all__ = ["QUIET_PATHS", "create_app"]

# Probes and the scrape target: not counted, not logged, never refused for load.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready")

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
    limits = Limits.from_settings(settings)
    capacity = Capacity(
        limit=settings.max_in_flight, budget=settings.buffer_budget_bytes, readiness=readiness
    )
    # The Open Inference Protocol over gRPC, on the same state: slots, limits, readiness.
    grpc = GrpcServer(settings, limits, capacity) if settings.grpc else None
    app = FastAPI(
        title="Scorer",
        version=package.__version__,
        description=DESCRIPTION,
        lifespan=lifespan_for(
            readiness, settings.drain_seconds, _warm_up, () if grpc is None else (grpc,)
        ),
        telemetry=None if settings.opentelemetry else _NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.readiness = readiness
    app.state.limits = limits
    app.state.capacity = capacity
    app.state.grpc = grpc
    # Plain ASGI routes first: the router tries routes in order.
    app.router.routes[:0] = scoring.routes()
    app.include_router(metrics.router)
    app.include_router(health.router)
    app.include_router(v2_router)
    install_error_handlers(app)
    # Added first, so innermost: every operational layer below still wraps the scoring routes.
    app.add_middleware(scoring.ScoringLane, more=infer_lane())
    _install_middleware(app, settings)
    models = [*scoring.openapi_models(), *metrics.MODELS, *V2_MODELS]

    def openapi() -> dict[str, Any]:
        return build_openapi(app, scoring.openapi_paths(), models)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (outermost first: observe, CORS, auth, admission) and /metrics."""
    configure_logging(settings.log_level, settings.access_log)
    if settings.metrics:
        app.add_route("/metrics", prometheus_endpoint, methods=["GET"], include_in_schema=False)
    # add_middleware puts each new layer outside the previous ones.
    app.add_middleware(Admission, capacity=app.state.capacity, exempt_paths=QUIET_PATHS)
    if settings.api_keys:
        keys = [key.get_secret_value() for key in settings.api_keys]
        app.add_middleware(BearerAuth, keys=keys, open_paths=settings.open_paths)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        ObservabilityMiddleware,
        quiet_paths=QUIET_PATHS,
        prometheus=settings.metrics,
        access_log=settings.access_log,
    )
