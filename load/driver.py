"""Constant-concurrency load: N workers, each with one request in flight at a time."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from load.checks import Outcome, judge
from load.payloads import Payload

__all__ = ["ENDPOINT", "LoadConfig", "LoadRun", "Record", "require_loopback"]

ENDPOINT = "/v1/cross-entropy"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def require_loopback(base_url: str) -> None:
    """Refuse to load anything but this machine."""
    host = urlsplit(base_url).hostname
    if host not in _LOOPBACK:
        raise ValueError(f"the load test talks to 127.0.0.1 only; got {base_url!r}")


@dataclass(frozen=True)
class LoadConfig:
    """How hard and how long to push, and how much to check."""

    base_url: str = "http://127.0.0.1:8000"
    concurrency: int = 8
    max_requests: int = 100_000
    verify_fraction: float = 0.1
    seed: int = 0
    request_timeout: float = 60.0


@dataclass(frozen=True)
class Record:
    """One request: when it started (seconds from the run's start) and how it went."""

    kind: str
    start: float
    latency: float
    outcome: Outcome
    detail: str
    logits_nbytes: int
    body_nbytes: int


class LoadRun:
    """Send ``payloads`` (cycled in a seeded order) until ``stop`` is set or the count is
    reached. A worker finishes the request it holds when told to stop."""

    def __init__(self, config: LoadConfig, payloads: Sequence[Payload]) -> None:
        require_loopback(config.base_url)
        if not payloads:
            raise ValueError("no payloads to send")
        self.config = config
        self.payloads = payloads
        self.records: list[Record] = []
        self.in_flight = 0
        self.t0 = time.monotonic()
        self.elapsed = 0.0
        self._issued = 0

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.t0

    async def run(self, stop: asyncio.Event) -> list[Record]:
        """Run the workers until ``stop`` or the count; return every request's record."""
        cfg = self.config
        timeout = httpx.Timeout(cfg.request_timeout, connect=5.0)
        limits = httpx.Limits(
            max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency
        )
        async with httpx.AsyncClient(
            base_url=cfg.base_url, timeout=timeout, limits=limits, trust_env=False
        ) as client:
            self.t0 = time.monotonic()
            workers = [self._worker(client, i, stop) for i in range(cfg.concurrency)]
            await asyncio.gather(*workers)
            self.elapsed = self.now()
        return self.records

    async def _worker(self, client: httpx.AsyncClient, index: int, stop: asyncio.Event) -> None:
        rng = random.Random(self.config.seed * 1_000 + index)
        while not stop.is_set() and self._issued < self.config.max_requests:
            self._issued += 1
            payload = rng.choice(self.payloads)
            full = rng.random() < self.config.verify_fraction
            start = self.now()
            self.in_flight += 1
            try:
                response = await client.post(
                    ENDPOINT,
                    content=payload.body,
                    headers={"content-type": payload.kind.media_type},
                )
            except httpx.HTTPError as exc:
                latency = self.now() - start
                outcome, detail = Outcome.ERROR, f"{type(exc).__name__}: {exc!s:.200}"
            else:
                latency = self.now() - start
                content_type = response.headers.get("content-type", "")
                outcome, detail = judge(
                    payload, response.status_code, content_type, response.content, full=full
                )
            finally:
                self.in_flight -= 1
            self.records.append(
                Record(
                    kind=payload.kind.name,
                    start=start,
                    latency=latency,
                    outcome=outcome,
                    detail=detail,
                    logits_nbytes=payload.logits_nbytes,
                    body_nbytes=len(payload.body),
                )
            )
