"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from scorer_client._calls import Calls
from scorer_client._jobs import Job
from scorer_client._retry import RETRYABLE, Backoff, failure, parse
from scorer_client._wire import MEDIA_TYPE
from scorer_client.errors import ScoringAPIError
from scorer_client.evaluate import Batch, Evaluation, Loss, Progress, evaluate
from scorer_client.results import LossResult, SoftmaxResult

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ScoringClient", "headers_for"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # the server's default SCORER_MAX_BODY_BYTES


def headers_for(api_key: str | None) -> dict[str, str]:
    """Request headers: msgpack both ways, and the bearer key if any."""
    headers = {"content-type": MEDIA_TYPE, "accept": MEDIA_TYPE}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


class ScoringClient(Calls[LossResult, SoftmaxResult]):
    """A blocking client of the scoring service, sending NumPy arrays as binary tensors.

    Example:
        >>> with ScoringClient("http://127.0.0.1:8000") as client:  # doctest: +SKIP
        ...     client.cross_entropy(np.array([[1.0, 2.0, 3.0]]), np.array([2])).loss
        0.4076...

    Args:
        base_url: The service, e.g. ``http://127.0.0.1:8000``.
        timeout: Seconds (or an ``httpx.Timeout``) for each request.
        backoff: Retries on connection errors and 503, and the waits between them.
        max_body_bytes: The server's body limit; larger batches go in chunks (and a 413
            halves the chunk until it fits).
        api_key: Sent as ``Authorization: Bearer``.
        transport: An httpx transport, for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = 60.0,
        backoff: Backoff | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff or Backoff()
        self.max_body_bytes = max_body_bytes
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers=headers_for(api_key),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def evaluate(
        self,
        batches: Iterable[Batch],
        *,
        loss: Loss = "cross-entropy",
        metrics: Mapping[str, Any] | None = None,
        concurrency: int = 4,
        progress: Progress | bool | None = None,
        **options: Any,
    ) -> Evaluation:
        """Exact dataset-level metrics of ``(predictions, labels)`` batches.

        ``concurrency`` batches in flight, each scored with ``metrics`` (default
        calibration and Brier) and its aggregate; the aggregates merged in batch order.
        ``options`` go to each call; ``progress=True`` draws a line on a terminal.
        See :func:`scorer_client.evaluate.evaluate`.
        """
        return evaluate(
            self,
            batches,
            loss=loss,
            metrics=metrics,
            concurrency=concurrency,
            progress=progress,
            **options,
        )

    def _run_loss(self, job: Job) -> LossResult:
        result = self._run(job)
        assert isinstance(result, LossResult)
        return result

    def _run_softmax(self, job: Job) -> SoftmaxResult:
        result = self._run(job)
        assert isinstance(result, SoftmaxResult)
        return result

    def _run(self, job: Job) -> LossResult | SoftmaxResult:
        rows = job.rows_per_request(self.max_body_bytes)
        while True:
            try:
                return job.combine([self._post(job.path, body) for body in job.bodies(rows)])
            except ScoringAPIError as exc:
                if exc.status != 413 or rows <= 1 or not job.splittable:
                    raise
                rows = (rows + 1) // 2

    def _post(self, path: str, body: bytes) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = self._http.post(path, content=body)
            except RETRYABLE as exc:
                if attempt >= self.backoff.retries:
                    raise failure(exc, self.base_url + path, attempt + 1) from exc
                time.sleep(self.backoff.delay(attempt))
            except httpx.TransportError as exc:
                raise failure(exc, self.base_url + path, attempt + 1) from exc
            else:
                if response.status_code != 503 or attempt >= self.backoff.retries:
                    return parse(response)
                time.sleep(self.backoff.delay(attempt, response.headers.get("retry-after")))
            attempt += 1
