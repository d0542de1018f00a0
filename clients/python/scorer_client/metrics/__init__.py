"""Dataset-level metrics from the aggregates of many responses, merged exactly.

Each scored batch with ``metrics.aggregate`` carries an aggregate: the sufficient
statistics of its metrics. :func:`merge_aggregates` adds any number of them (in their
wire form, as a response has them, or as objects) and :func:`aggregate_metrics` turns
the sum into dataset-level metrics, with the very formulas the service uses for one
request (it imports this package). Pure NumPy: importing it does not import httpx.

Example:

    >>> from scorer_client.metrics import aggregate_metrics, merge_aggregates
    >>> batches = [{"classes": 2, "count": 2, "correct": 1, "loss_sum": 1.5,
    ...             "total_weight": 2.0, "confidence_sum": 1.4},
    ...            {"classes": 2, "count": 1, "correct": 1, "loss_sum": 0.25,
    ...             "total_weight": 1.0, "confidence_sum": 0.9}]
    >>> m = aggregate_metrics(merge_aggregates(batches))
    >>> print(m["count"], f"{m['loss']:.4f}", f"{m['accuracy']:.4f}")
    3 0.5833 0.6667
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scorer_client.metrics.aggregate import (
    Aggregate,
    CalibrationSums,
    ClassCounts,
    CurveCounts,
    PerClassSums,
    TokenSums,
    TopKCounts,
    merge,
)
from scorer_client.metrics.errors import InvalidAggregate
from scorer_client.metrics.summary import metrics_of
from scorer_client.metrics.wire import FORMAT, from_wire, to_wire

__all__ = [
    "FORMAT",
    "Aggregate",
    "CalibrationSums",
    "ClassCounts",
    "CurveCounts",
    "InvalidAggregate",
    "PerClassSums",
    "TokenSums",
    "TopKCounts",
    "aggregate_metrics",
    "from_wire",
    "merge_aggregates",
    "to_wire",
]


def merge_aggregates(aggregates: Iterable[Aggregate | Mapping[str, Any]]) -> Aggregate:
    """Sum aggregates given as objects or in wire form (``response["aggregate"]``).

    Raises:
        InvalidAggregate: a malformed aggregate, or aggregates of different metrics;
            ``loc`` is ``("aggregates", i, ...)``.
    """
    return merge(from_wire(a, ("aggregates", i)) for i, a in enumerate(aggregates))


def aggregate_metrics(aggregate: Aggregate | Mapping[str, Any]) -> dict[str, Any]:
    """Dataset-level metrics of an aggregate (an object or its wire form)."""
    return metrics_of(from_wire(aggregate))
