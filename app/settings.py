"""Service settings, read from the environment with the ``SCORER_`` prefix."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
