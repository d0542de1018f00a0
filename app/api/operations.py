"""Wire the operational layers into an application: limits, auth, CORS, metrics, logs."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.api.backpressure import Admission, Capacity
from app.api.limits import Limits
from app.api.security import BearerAuth
from app.observability import ObservabilityMiddleware, configure_logging, metrics_endpoint
from app.settings import Settings

__all__ = ["QUIET_PATHS", "install_operations"]

# Probes and the scrape target: not counted, not logged, never refused for load.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready")


def install_operations(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (outermost first: observe, CORS, auth, admission) and /metrics."""
    configure_logging(settings.log_level, settings.access_log)
    app.state.limits = Limits.from_settings(settings)
    if settings.metrics:
        app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    # add_middleware puts each new layer outside the previous ones.
    app.state.capacity = Capacity(
        limit=settings.max_in_flight,
        budget=settings.buffer_budget_bytes,
        readiness=app.state.readiness,
    )
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
        metrics=settings.metrics,
        access_log=settings.access_log,
    )
