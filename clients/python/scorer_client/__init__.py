"""The Python client of the scoring service: NumPy in, NumPy out, metrics merged locally.

Depends on NumPy, httpx and msgspec only (``pip install ./clients/python``); Parquet and
Arrow files need ``pyarrow`` (the ``parquet`` extra), the local HTML report
``matplotlib`` (the ``report`` extra).

The clients are imported on first use, so that :mod:`scorer_client.metrics` (pure NumPy,
which the service itself runs) does not import httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from scorer_client._retry import Backoff
    from scorer_client.aio import AsyncScoringClient
    from scorer_client.errors import (
        ErrorItem,
        ScoringAPIError,
        ScoringClientError,
        ScoringConnectionError,
        ScoringTimeout,
    )
    from scorer_client.results import Diagnostics, LossResult, SoftmaxResult
    from scorer_client.sync import ScoringClient

_WHERE = {
    "AsyncScoringClient": "scorer_client.aio",
    "Backoff": "scorer_client._retry",
    "Diagnostics": "scorer_client.results",
    "ErrorItem": "scorer_client.errors",
    "LossResult": "scorer_client.results",
    "ScoringAPIError": "scorer_client.errors",
    "ScoringClient": "scorer_client.sync",
    "ScoringClientError": "scorer_client.errors",
    "ScoringConnectionError": "scorer_client.errors",
    "ScoringTimeout": "scorer_client.errors",
    "SoftmaxResult": "scorer_client.results",
}

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
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'scorer_client' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
