"""Wire the operational layers into an application: limits, auth, CORS, metrics, logs."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app.api.backpressure import InFlightLimit
from app.api.limits import Limits
from app.api.security import BearerAuth
from app.observability import ObservabilityMiddleware, configure_logging, metrics_endpoint
from app.settings import Settings

__all__ = ["QUIET_PATHS", "install_operations"]

# Probes and the scrape target: not counted, not logged, never refused for load.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready")


def install_operations(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (outermost first: observe, CORS, auth, in-flight) and /metrics."""
    configure_logging(settings.log_level, settings.access_log)
    app.state.limits = Limits.from_settings(settings)
    if settings.metrics:
        app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    # add_middleware puts each new layer outside the previous ones.
    app.add_middleware(InFlightLimit, limit=settings.max_in_flight, exempt_paths=QUIET_PATHS)
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
