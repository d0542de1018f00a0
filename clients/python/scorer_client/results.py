"""Results as NumPy arrays and floats, and how chunk results combine into one."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scorer_client._wire import from_tensor
from scorer_client.metrics import Aggregate, aggregate_metrics, from_wire, merge_aggregates

__all__ = ["Diagnostics", "LossResult", "SoftmaxResult"]

_PER_SAMPLE = (
    "predicted_class",
    "confidence",
    "true_class_prob",
    "margin",
    "true_class_rank",
    "entropy",
)
_MEANS = ("accuracy", "mean_confidence", "mean_entropy", "mean_true_class_prob")


@dataclass(frozen=True)
class Diagnostics:
    """Batch diagnostics over the scored samples; ``per_sample`` arrays when asked for."""

    count: int
    accuracy: float | None
    mean_confidence: float | None
    mean_entropy: float | None
    mean_true_class_prob: float | None
    max_abs_logit: float
    overflow_rows: int
    underflow_rows: int
    zero_probs: int
    per_sample: dict[str, NDArray[Any]] | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any] | None) -> Diagnostics | None:
        if body is None:
            return None
        numerical = body["numerical"]
        per_sample = body.get("per_sample")
        return cls(
            count=int(body["count"]),
            **{name: body[name] for name in _MEANS},
            max_abs_logit=float(numerical["max_abs_logit"]),
            overflow_rows=int(numerical["overflow_rows"]),
            underflow_rows=int(numerical["underflow_rows"]),
            zero_probs=int(numerical["zero_probs"]),
            per_sample=None
            if per_sample is None
            else {name: from_tensor(per_sample[name]) for name in _PER_SAMPLE},
        )

    @classmethod
    def combine(cls, parts: list[Diagnostics | None]) -> Diagnostics | None:
        """Counts add; means are weighted by each chunk's count, as one batch would have them."""
        known = [part for part in parts if part is not None]
        if not known:
            return None
        count = sum(part.count for part in known)
        means: dict[str, float | None] = {}
        for name in _MEANS:
            pairs = [(part.count, getattr(part, name)) for part in known]
            pairs = [(n, value) for n, value in pairs if n and value is not None]
            total = sum(n for n, _ in pairs)
            means[name] = math.fsum(n * v for n, v in pairs) / total if total else None
        per_sample = None
        if all(part.per_sample is not None for part in known):
            per_sample = {
                name: np.concatenate([part.per_sample[name] for part in known if part.per_sample])
                for name in _PER_SAMPLE
            }
        return cls(
            count=count,
            **means,
            max_abs_logit=max(part.max_abs_logit for part in known),
            overflow_rows=sum(part.overflow_rows for part in known),
            underflow_rows=sum(part.underflow_rows for part in known),
            zero_probs=sum(part.zero_probs for part in known),
            per_sample=per_sample,
        )


def _array(body: dict[str, Any], name: str) -> NDArray[Any] | None:
    value = body.get(name)
    return None if value is None else from_tensor(value)


def _concat(arrays: list[NDArray[Any] | None]) -> NDArray[Any] | None:
    if any(array is None for array in arrays):
        return None
    return np.concatenate([array for array in arrays if array is not None])


@dataclass(frozen=True)
class LossResult:
    """A cross-entropy result: ``loss`` is None with reduction none.

    ``mean = loss_sum / total_weight``; ``chunks`` says how many requests it took.
    With ``metrics`` asked for: ``aggregate`` (merged over the chunks) and ``metrics``,
    the batch's metrics from it (as ``POST /v1/aggregates/merge`` gives them).
    """

    loss: float | None
    reduction: str
    loss_sum: float
    total_weight: float
    label_kind: str
    precision: str
    per_sample: NDArray[Any] | None
    probs: NDArray[Any] | None
    log_probs: NDArray[Any] | None
    diagnostics: Diagnostics | None
    chunks: int = 1
    aggregate: Aggregate | None = None

    @functools.cached_property
    def metrics(self) -> dict[str, Any] | None:
        """The batch's metrics from ``aggregate``, worked out when first read: a chunk's or
        an ``evaluate`` batch's are never needed, and curves cost a pass per class."""
        return None if self.aggregate is None else aggregate_metrics(self.aggregate)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> LossResult:
        wire = body.get("aggregate")
        aggregate = None if wire is None else from_wire(wire)
        return cls(
            loss=None if body["loss"] is None else float(body["loss"]),
            reduction=body["reduction"],
            loss_sum=float(body["loss_sum"]),
            total_weight=float(body["total_weight"]),
            label_kind=body["label_kind"],
            precision=body["precision"],
            per_sample=_array(body, "per_sample"),
            probs=_array(body, "probs"),
            log_probs=_array(body, "log_probs"),
            diagnostics=Diagnostics.from_body(body.get("diagnostics")),
            aggregate=aggregate,
        )

    @classmethod
    def combine(cls, parts: list[LossResult], reduction: str) -> LossResult:
        """One result from chunks scored with reduction sum (or none): sums, not averages.

        Raises:
            ZeroDivisionError: reduction mean over a total weight of zero.
        """
        loss_sum = math.fsum(part.loss_sum for part in parts)
        total_weight = math.fsum(part.total_weight for part in parts)
        loss: float | None = None
        if reduction == "sum":
            loss = loss_sum
        elif reduction == "mean":
            if total_weight == 0:
                raise ZeroDivisionError("mean over a total weight of zero")
            loss = loss_sum / total_weight
        aggregates = [part.aggregate for part in parts if part.aggregate is not None]
        aggregate = merge_aggregates(aggregates) if aggregates else None
        return cls(
            loss=loss,
            reduction=reduction,
            loss_sum=loss_sum,
            total_weight=total_weight,
            label_kind=parts[0].label_kind,
            precision=parts[0].precision,
            per_sample=_concat([part.per_sample for part in parts]),
            probs=_concat([part.probs for part in parts]),
            log_probs=_concat([part.log_probs for part in parts]),
            diagnostics=Diagnostics.combine([part.diagnostics for part in parts]),
            chunks=len(parts),
            aggregate=aggregate,
        )


@dataclass(frozen=True)
class SoftmaxResult:
    """A softmax result: the arrays asked for and the diagnostics."""

    precision: str
    probs: NDArray[Any] | None
    log_probs: NDArray[Any] | None
    logsumexp: NDArray[Any] | None
    diagnostics: Diagnostics | None
    chunks: int = 1

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SoftmaxResult:
        return cls(
            precision=body["precision"],
            probs=_array(body, "probs"),
            log_probs=_array(body, "log_probs"),
            logsumexp=_array(body, "logsumexp"),
            diagnostics=Diagnostics.from_body(body.get("diagnostics")),
        )

    @classmethod
    def combine(cls, parts: list[SoftmaxResult]) -> SoftmaxResult:
        """One result from chunks of the batch axis."""
        return cls(
            precision=parts[0].precision,
            probs=_concat([part.probs for part in parts]),
            log_probs=_concat([part.log_probs for part in parts]),
            logsumexp=_concat([part.logsumexp for part in parts]),
            diagnostics=Diagnostics.combine([part.diagnostics for part in parts]),
            chunks=len(parts),
        )
