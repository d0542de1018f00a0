"""Service settings, read from the environment with the ``SCORER_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Every knob of the service; ``SCORER_MAX_BODY_BYTES=1048576`` sets ``max_body_bytes``."""

    model_config = SettingsConfigDict(env_prefix="SCORER_", extra="ignore", frozen=True)

    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest request body accepted, in bytes; larger bodies get 413 before or while reading."""

    drain_seconds: float = Field(default=0.0, ge=0.0)
    """After SIGTERM, keep serving this long with /readyz answering 503 before shutting down,
    so that a load balancer polling readiness stops sending new requests first."""

    log_level: str = "info"
    """Level of the service's own logs."""

    max_decompressed_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest body after gzip/deflate decoding (Content-Encoding); past it, 413 (zip bombs)."""

    max_elements: int = Field(default=2**25, gt=0)
    """Most elements in any one array of a request (N x C for logits); more is 413."""

    max_rank: int = Field(default=8, ge=1, le=32)
    """Most dimensions of any array of a request; more is 422."""

    max_json_depth: int = Field(default=32, ge=2, le=256)
    """Deepest nesting of arrays and objects in a JSON body; deeper is 422."""

    max_in_flight: int = Field(default=64, ge=1)
    """Requests served at once by one worker; the next gets 503 with Retry-After."""

    buffer_budget_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    """Bytes one worker may hold for clients that are not working: bodies being received
    (their Content-Length, or what has come of a chunked one) and responses not yet
    handed to the kernel. A request that would pass it first cuts off clients stalled
    for a second or more, then gets 503; /readyz says 503 while it is full."""

    header_timeout_seconds: float = Field(default=10.0, gt=0.0)
    """A connection must complete a request's line and headers within this long of
    opening, or of its previous response; otherwise it is closed (idle or slow
    headers). Enforced by ``python -m app.serve``."""

    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """Largest request line and headers together; past it, 431 and the connection is
    closed. Enforced by ``python -m app.serve``."""

    body_timeout_seconds: float = Field(default=10.0, gt=0.0)
    """Longest wait for the next bytes of a request body, and the grace after which
    the body must keep up ``min_body_rate``; otherwise 408. Enforced by
    ``python -m app.serve``."""

    min_body_rate: int = Field(default=64 * 1024, ge=0)
    """Bytes per second a body must average once ``body_timeout_seconds`` have passed
    since its headers; 0: no rate, only the idle timeout."""

    write_timeout_seconds: float = Field(default=10.0, gt=0.0)
    """A response that the client takes no byte of for this long is abandoned and its
    connection closed. Enforced by ``python -m app.serve``."""

    graceful_shutdown_seconds: int = Field(default=20, ge=1)
    """After SIGTERM (and ``drain_seconds``), the longest wait for requests in flight
    before they are cancelled; ``python -m app.serve --timeout-graceful-shutdown``."""

    inline_body_bytes: int = Field(default=64 * 1024, ge=0)
    """Uncompressed bodies up to this size are scored on the event loop, where their
    work (well under a millisecond) costs less than a hop to a worker thread and back;
    larger ones, and every compressed one, go to a worker thread. 0: always a thread."""

    request_timeout_seconds: float = Field(default=60.0, gt=0.0)
    """Deadline for reading, scoring and encoding one request; past it, 504."""

    compute_threads: int = Field(default=1, ge=1, le=64)
    """Threads one large softmax cross-entropy (class-index labels, over 2 MiB of
    logits) may use; results are bit-identical for any count. Set it to cores / workers
    when running fewer workers than cores; with a worker per core, threads only contend
    for the cores and are slower than one (bench/README.md, design decisions)."""

    grpc: bool = True
    """Serve the Open Inference Protocol over gRPC too, beside REST, in every worker."""

    grpc_host: str = "127.0.0.1"
    """Address the gRPC server listens on; ``python -m app.serve`` makes it its ``--host``
    unless this is set."""

    grpc_port: int = Field(default=8001, ge=0, le=65535)
    """Port of the gRPC server (Triton's); 0 picks a free one (one worker only)."""

    api_keys: Annotated[list[SecretStr], NoDecode] = []
    """Bearer keys accepted (comma-separated in the environment); none means no auth."""

    open_paths: Annotated[list[str], NoDecode] = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
    ]
    """Paths served without a key when api_keys is set (comma-separated)."""

    cors_origins: Annotated[list[str], NoDecode] = []
    """Origins allowed by CORS (comma-separated, or *); none means no CORS headers at all."""

    metrics: bool = True
    """Serve Prometheus metrics at /metrics (multiprocess when PROMETHEUS_MULTIPROC_DIR is set)."""

    access_log: bool = True
    """Write one JSON line per request (health probes and /metrics excepted)."""

    opentelemetry: bool = False
    """FastAPI's native OpenTelemetry (traces, metrics, logs to the global providers).

    Off by default: it checks for configured providers on every request (bench/README.md,
    design decisions), and Prometheus and the access log already cover what it would report.
    """

    @field_validator("api_keys", "open_paths", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
