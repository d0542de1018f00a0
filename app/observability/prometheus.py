"""Prometheus metrics; multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set.

With several uvicorn workers every process writes its samples to memory-mapped files in
that directory and ``/metrics`` (served by whichever worker) merges them all. The
directory must exist, be writable, and be emptied before the server starts.
"""

from __future__ import annotations

import atexit
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from app.observability.stats import RequestStats

__all__ = [
    "CONNECTIONS_CLOSED",
    "IN_FLIGHT",
    "MULTIPROCESS",
    "InFlight",
    "Recorder",
    "prometheus_endpoint",
    "render",
]

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
# The *_created series double the scrape and say little here.
disable_created_metrics()  # type: ignore[no-untyped-call]

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BYTES = tuple(float(4**k) for k in range(4, 15))  # 256 B .. 256 MiB
_COUNTS = tuple(float(4**k) for k in range(0, 13))  # 1 .. 16 Mi

REQUESTS = Counter("scorer_requests", "Requests answered", ["route", "status", "encoding"])
LATENCY = Histogram(
    "scorer_request_duration_seconds", "Time from request to response", ["route"], buckets=_SECONDS
)
REQUEST_BYTES = Histogram(
    "scorer_request_size_bytes", "Request body bytes on the wire", ["route"], buckets=_BYTES
)
RESPONSE_BYTES = Histogram(
    "scorer_response_size_bytes", "Response body bytes", ["route"], buckets=_BYTES
)
SAMPLES = Histogram(
    "scorer_batch_samples", "Samples (rows) per scored request", ["route"], buckets=_COUNTS
)
CLASSES = Histogram(
    "scorer_batch_classes", "Classes per scored request", ["route"], buckets=_COUNTS
)
STAGES = Histogram(
    "scorer_stage_duration_seconds",
    "Time in each stage of a scored request: decode, compute, encode",
    ["route", "stage"],
    buckets=_SECONDS,
)
_IN_FLIGHT = Gauge(
    "scorer_requests_in_flight",
    "Requests being served (summed over live workers)",
    multiprocess_mode="livesum",
)


class InFlight:
    """The in-flight gauge, moved by every request.

    In one process the gauge reads a plain counter when scraped (``set_function``): its
    ``inc`` and ``dec`` take a lock each, on every request (bench/README.md, design
    decisions). Several workers must write their memory-mapped files, which only ``inc``
    and ``dec`` do.
    """

    def __init__(self, gauge: Gauge, multiprocess: bool) -> None:
        self.count = 0
        self.gauge = gauge if multiprocess else None
        if not multiprocess:
            gauge.set_function(lambda: self.count)

    def enter(self) -> None:
        self.count += 1
        if self.gauge is not None:
            self.gauge.inc()

    def leave(self) -> None:
        self.count -= 1
        if self.gauge is not None:
            self.gauge.dec()


REJECTIONS = Counter(
    "scorer_rejections", "Requests answered with an error, by reason", ["route", "reason"]
)

CONNECTIONS_CLOSED = Counter(
    "scorer_connections_closed",
    "Connections the server closed on a client's account: idle, header_timeout, "
    "header_too_large, body_timeout, write_stalled, shed (memory budget)",
    ["reason"],
)

IN_FLIGHT = InFlight(_IN_FLIGHT, MULTIPROCESS)

if MULTIPROCESS:
    # Drop this worker's live gauges when it exits, so in-flight counts only live workers.
    atexit.register(multiprocess.mark_process_dead, os.getpid())


class Recorder:
    """Records one request; caches labelled children so a request costs dict lookups only."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, int, str], Counter] = {}
        self._routes: dict[str, tuple[Histogram, ...]] = {}
        self._rejections: dict[tuple[str, str], Counter] = {}

    def record(
        self,
        route: str,
        status: int,
        encoding: str,
        seconds: float,
        received: int,
        sent: int,
        stats: RequestStats,
    ) -> None:
        key = (route, status, encoding)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = REQUESTS.labels(route, str(status), encoding)
        counter.inc()
        children = self._routes.get(route)
        if children is None:
            children = self._routes[route] = (
                LATENCY.labels(route),
                REQUEST_BYTES.labels(route),
                RESPONSE_BYTES.labels(route),
                SAMPLES.labels(route),
                CLASSES.labels(route),
                STAGES.labels(route, "decode"),
                STAGES.labels(route, "compute"),
                STAGES.labels(route, "encode"),
            )
        latency, request_bytes, response_bytes, samples, classes, decode, compute, encode = children
        latency.observe(seconds)
        request_bytes.observe(received)
        response_bytes.observe(sent)
        if stats.samples is not None and stats.classes is not None:
            samples.observe(stats.samples)
            classes.observe(stats.classes)
        if stats.decode is not None:
            decode.observe(stats.decode)
        if stats.compute is not None:
            compute.observe(stats.compute)
        if stats.encode is not None:
            encode.observe(stats.encode)
        if status >= 400:
            reason = (route, stats.error or f"http_{status}")
            rejected = self._rejections.get(reason)
            if rejected is None:
                rejected = self._rejections[reason] = REJECTIONS.labels(*reason)
            rejected.inc()


def render() -> bytes:
    """The exposition text: every worker's samples in multiprocess mode, else this process's."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def prometheus_endpoint(request: Request) -> Response:
    """Prometheus scrape target (a sync endpoint: the file merge runs in the threadpool)."""
    return Response(render(), media_type=CONTENT_TYPE_LATEST)
