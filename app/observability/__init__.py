"""Operations: Prometheus metrics, JSON logs and the request middleware that feeds both."""

from app.observability.logging import configure_logging
from app.observability.middleware import ObservabilityMiddleware
from app.observability.prometheus import MULTIPROCESS, Recorder, prometheus_endpoint
from app.observability.stats import STATS_KEY, RequestStats

__all__ = [
    "MULTIPROCESS",
    "STATS_KEY",
    "ObservabilityMiddleware",
    "Recorder",
    "RequestStats",
    "configure_logging",
    "prometheus_endpoint",
]
