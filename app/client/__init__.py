"""A Python client of the scoring service for pipelines: NumPy in, NumPy out.

Needs only NumPy, msgspec and httpx (``pip install 'scorer[client]'``), not the server.
"""

from app.client._retry import Backoff
from app.client.aio import AsyncScoringClient
from app.client.errors import (
    ErrorItem,
    ScoringAPIError,
    ScoringClientError,
    ScoringConnectionError,
    ScoringTimeout,
)
from app.client.results import Diagnostics, LossResult, SoftmaxResult
from app.client.sync import ScoringClient

__all__ = [
    "AsyncScoringClient",
    "Backoff",
    "Diagnostics",
    "ErrorItem",
    "LossResult",
    "ScoringAPIError",
    "ScoringClient",
    "ScoringClientError",
    "ScoringConnectionError",
    "ScoringTimeout",
    "SoftmaxResult",
]
