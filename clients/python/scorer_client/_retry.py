"""When to retry, how long to wait, and how a response becomes a body or an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from scorer_client._wire import decode
from scorer_client.errors import ScoringAPIError, ScoringConnectionError, ScoringTimeout

__all__ = ["RETRYABLE", "Backoff", "failure", "parse"]

# The request never reached the service, or the connection broke: scoring is idempotent,
# so sending it again is safe.
RETRYABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class Backoff:
    """``retries`` more attempts, waiting ``base * 2**attempt`` seconds, at most ``cap``."""

    retries: int = 3
    base: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; a Retry-After header may lengthen it."""
        wait = min(self.cap, self.base * 2.0**attempt)
        if retry_after is not None and retry_after.strip().isdigit():
            wait = max(wait, min(self.cap, float(retry_after)))
        return wait


def failure(exc: httpx.TransportError, url: str, attempts: int) -> Exception:
    """The client's exception for a transport error that is not retried (any more)."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return ScoringTimeout(f"no answer from {url} within the timeout ({type(exc).__name__})")
    return ScoringConnectionError(f"{url}: {type(exc).__name__}: {exc} (after {attempts} attempts)")


def parse(response: httpx.Response) -> dict[str, Any]:
    """The decoded body of a success; raise ScoringAPIError with the server's errors otherwise."""
    media_type = response.headers.get("content-type", "")
    body = decode(response.content, media_type)
    if response.is_success and isinstance(body, dict):
        return body
    if response.is_success:
        raise ScoringAPIError(response.status_code, "Bad response", f"undecodable {media_type}", [])
    raise ScoringAPIError.from_problem(response.status_code, body, response.text[:300])
