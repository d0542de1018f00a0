"""Sufficient statistics of the metrics: what batches add up to dataset-level numbers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scorer_client.metrics.errors import InvalidAggregate

__all__ = [
    "INT64_MAX",
    "Aggregate",
    "CalibrationSums",
    "ClassCounts",
    "CurveCounts",
    "PerClassSums",
    "TokenSums",
    "TopKCounts",
    "merge",
]

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class CalibrationSums:
    """Per confidence bin: samples, sum of confidences, correct top-1 predictions."""

    count: Ints
    confidence_sum: Floats
    correct: Ints


@dataclass(frozen=True)
class TopKCounts:
    """For each ``k``: samples whose true class ranks ``<= k``."""

    k: tuple[int, ...]
    correct: Ints


@dataclass(frozen=True)
class PerClassSums:
    """Per true class: support, correct, sum of per-sample losses, sum of their weights."""

    support: Ints
    correct: Ints
    loss_sum: Floats
    weight: Floats


@dataclass(frozen=True)
class ClassCounts:
    """Per class: true and false positives, false and true negatives of the decisions.

    ``threshold``: the probability a positive decision exceeds (binary, multi-label);
    None for one-vs-rest on the argmax (cross-entropy).
    """

    threshold: float | None
    tp: Ints
    fp: Ints
    fn: Ints
    tn: Ints


@dataclass(frozen=True)
class CurveCounts:
    """Per class and probability bin: positives and negatives, ``[classes, bins]`` each."""

    positives: Ints
    negatives: Ints


@dataclass(frozen=True)
class TokenSums:
    """Sequences, scored tokens and the sum of their NLL ``-log p(y_t)``."""

    sequences: int
    tokens: int
    nll_sum: float


@dataclass(frozen=True)
class Aggregate:
    """Sums over scored samples from which every dataset-level metric follows exactly.

    ``loss_sum`` and ``total_weight`` are the response's (``mean = loss_sum /
    total_weight``); ``count``, ``correct`` and ``confidence_sum`` are unweighted, as
    the diagnostics are. ``task`` is ``multiclass`` (cross-entropy: counts of samples)
    or ``binary`` (sigmoid cross-entropy: counts of elements, ``classes`` the label
    columns). Optional parts are None unless their metric was asked for.
    """

    classes: int
    count: int
    correct: int
    loss_sum: float
    total_weight: float
    confidence_sum: float
    task: str = "multiclass"
    brier_sum: float | None = None
    calibration: CalibrationSums | None = None
    top_k: TopKCounts | None = None
    confusion: Ints | None = None
    per_class: PerClassSums | None = None
    loss_histogram: Ints | None = None
    sequences: TokenSums | None = None
    classification: ClassCounts | None = None
    curves: CurveCounts | None = None


INT64_MAX = 2**63 - 1
# Fields that say what was measured: equal in every aggregate of a merge, not added.
_SAME = ("classes", "k", "task", "threshold")


def merge(aggregates: Iterable[Aggregate]) -> Aggregate:
    """Add aggregates field by field; they must have the same classes and parts.

    Counts add as integers, sums as float64, so the merged aggregate of batches equals
    the aggregate of their union up to float64 summation order.

    Raises:
        InvalidAggregate: no aggregates, or two that do not describe the same metrics, with
            ``loc`` ``("aggregates", i, field, ...)``.
    """
    items = list(aggregates)
    if not items:
        raise InvalidAggregate("at least one aggregate is required", ("aggregates",))
    total: Any = items[0]
    for i, item in enumerate(items[1:], start=1):
        total = _add(total, item, ("aggregates", i))
    assert isinstance(total, Aggregate)
    return total


def _add(a: Any, b: Any, loc: Loc) -> Any:
    if a is None or b is None:
        if a is None and b is None:
            return None
        why = "has" if a is None else "lacks"
        raise InvalidAggregate(
            f"aggregate {loc[1]} {why} {loc[-1]!r}, unlike aggregate 0: ask every batch"
            " for the same metrics",
            loc,
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        merged = {
            f.name: _add(getattr(a, f.name), getattr(b, f.name), (*loc, f.name))
            for f in dataclasses.fields(a)
        }
        return type(a)(**merged)
    if loc[-1] in _SAME:
        if a != b:
            raise InvalidAggregate(
                f"aggregate {loc[1]} has {loc[-1]} {b}, aggregate 0 has {a}", loc
            )
        return a
    if isinstance(a, np.ndarray):
        if a.shape != b.shape:
            raise InvalidAggregate(
                f"aggregate {loc[1]} has {loc[-1]} of shape {b.shape}, aggregate 0 {a.shape}",
                loc,
            )
        if a.dtype.kind == "i" and np.any(b > INT64_MAX - a):  # counts are >= 0
            raise _past_int64(loc)
        return a + b
    total = a + b
    if isinstance(total, int) and total > INT64_MAX:
        raise _past_int64(loc)
    return total


def _past_int64(loc: Loc) -> InvalidAggregate:
    return InvalidAggregate(f"the sum of {loc[-1]} up to aggregate {loc[1]} passes 2**63 - 1", loc)
