"""Options of the scoring functions, as plain frozen dataclasses (no web types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "InputKind",
    "LossOptions",
    "Precision",
    "Reduction",
    "SoftmaxOptions",
]

Reduction = Literal["none", "sum", "mean"]
InputKind = Literal["logits", "log_probs", "probs"]
Precision = Literal["float32", "float64"]
LossOutput = Literal["per_sample", "probs", "log_probs"]
SoftmaxOutput = Literal["probs", "log_probs", "logsumexp"]


@dataclass(frozen=True)
class LossOptions:
    """Options shared by softmax and sigmoid cross-entropy.

    ``precision`` None means: float32 when the predictions arrived as float32 or
    float16, float64 otherwise. ``threads`` is how many threads the large-batch path of
    index-label softmax cross-entropy may use (the caller's among them); results are
    identical for any value.
    """

    reduction: Reduction = "mean"
    class_weights: NDArray[np.floating] | None = None
    sample_weights: NDArray[np.floating] | None = None
    pos_weight: NDArray[np.floating] | float | None = None
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    temperature: float = 1.0
    axis: int = -1
    input_kind: InputKind = "logits"
    precision: Precision | None = None
    outputs: frozenset[LossOutput] = field(default_factory=lambda: frozenset({"per_sample"}))
    diagnostics: bool = True
    per_sample_diagnostics: bool = False
    threads: int = 1


@dataclass(frozen=True)
class SoftmaxOptions:
    """Options of :func:`app.core.probabilities.score_softmax`."""

    temperature: float = 1.0
    axis: int = -1
    precision: Precision | None = None
    outputs: frozenset[SoftmaxOutput] = field(default_factory=lambda: frozenset({"probs"}))
    diagnostics: bool = True
