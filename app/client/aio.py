"""The asyncio client: the same calls, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import Any, Self

import httpx

from app.client._calls import Calls
from app.client._jobs import Job
from app.client._retry import RETRYABLE, Backoff, failure, parse
from app.client.errors import ScoringAPIError
from app.client.results import LossResult, SoftmaxResult
from app.client.sync import DEFAULT_MAX_BODY_BYTES, headers_for

__all__ = ["AsyncScoringClient"]


class AsyncScoringClient(Calls[Awaitable[LossResult], Awaitable[SoftmaxResult]]):
    """As :class:`~app.client.ScoringClient`, for asyncio: ``await client.cross_entropy(...)``.

    Chunks of one call go one after another, so a call holds one connection at a time.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = 60.0,
        backoff: Backoff | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff or Backoff()
        self.max_body_bytes = max_body_bytes
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers=headers_for(api_key),
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run_loss(self, job: Job) -> LossResult:
        result = await self._run(job)
        assert isinstance(result, LossResult)
        return result

    async def _run_softmax(self, job: Job) -> SoftmaxResult:
        result = await self._run(job)
        assert isinstance(result, SoftmaxResult)
        return result

    async def _run(self, job: Job) -> LossResult | SoftmaxResult:
        rows = job.rows_per_request(self.max_body_bytes)
        while True:
            try:
                return job.combine([await self._post(job.path, body) for body in job.bodies(rows)])
            except ScoringAPIError as exc:
                if exc.status != 413 or rows <= 1 or not job.splittable:
                    raise
                rows = (rows + 1) // 2

    async def _post(self, path: str, body: bytes) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = await self._http.post(path, content=body)
            except RETRYABLE as exc:
                if attempt >= self.backoff.retries:
                    raise failure(exc, self.base_url + path, attempt + 1) from exc
                await asyncio.sleep(self.backoff.delay(attempt))
            except httpx.TransportError as exc:
                raise failure(exc, self.base_url + path, attempt + 1) from exc
            else:
                if response.status_code != 503 or attempt >= self.backoff.retries:
                    return parse(response)
                await asyncio.sleep(
                    self.backoff.delay(attempt, response.headers.get("retry-after"))
                )
            attempt += 1
