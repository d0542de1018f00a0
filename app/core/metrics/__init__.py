"""Evaluation metrics of a scored batch: the counts behind them and their aggregate.

The losses' metrics (calibration, Brier, top-k, confusion, per-class, sequences,
classification, curves) are computed here from the core's results; the aggregate types,
their merge and the formulas from sums to metrics are :mod:`scorer_client.metrics`,
the pure-NumPy part of the client that the service runs too, so that a client merging
aggregates locally gets the service's numbers by the same code.
"""

from __future__ import annotations

from scorer_client.metrics import (
    FORMAT,
    Aggregate,
    CalibrationSums,
    ClassCounts,
    CurveCounts,
    InvalidAggregate,
    PerClassSums,
    TokenSums,
    TopKCounts,
    aggregate_metrics,
    from_wire,
    merge_aggregates,
    to_wire,
)

from app.core.metrics.evaluate import (
    Evaluation,
    evaluate_binary_cross_entropy,
    evaluate_cross_entropy,
)
from app.core.metrics.options import MetricOptions
from app.core.metrics.sequences import SequenceMetrics

__all__ = [
    "FORMAT",
    "Aggregate",
    "CalibrationSums",
    "ClassCounts",
    "CurveCounts",
    "Evaluation",
    "InvalidAggregate",
    "MetricOptions",
    "PerClassSums",
    "SequenceMetrics",
    "TokenSums",
    "TopKCounts",
    "aggregate_metrics",
    "evaluate_binary_cross_entropy",
    "evaluate_cross_entropy",
    "from_wire",
    "merge_aggregates",
    "to_wire",
]
