"""Results of the scoring functions: frozen dataclasses of NumPy arrays and floats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Diagnostics",
    "LossResult",
    "NumericalDiagnostics",
    "PerSampleDiagnostics",
    "SoftmaxResult",
]

LabelKind = Literal["index", "probability", "binary"]
FloatArray = NDArray[np.floating]


@dataclass(frozen=True)
class NumericalDiagnostics:
    """What a textbook ``log(exp(x) / sum(exp(x)))`` would have done to this batch.

    ``overflow_rows``: rows where some ``exp(x)`` overflows in the compute precision.
    ``underflow_rows``: rows where some finite ``exp(x)`` underflows to 0, so a
    textbook ``log(p)`` would give ``-inf``. ``zero_probs``: probabilities of the
    stable softmax that are exactly 0.
    """

    max_abs_logit: float
    overflow_rows: int
    underflow_rows: int
    zero_probs: int


@dataclass(frozen=True)
class PerSampleDiagnostics:
    """Per-sample diagnostics, each with the per-sample output's shape."""

    predicted_class: NDArray[np.int64]
    confidence: FloatArray
    true_class_prob: FloatArray
    margin: FloatArray
    true_class_rank: NDArray[np.int64]
    entropy: FloatArray


@dataclass(frozen=True)
class Diagnostics:
    """Batch diagnostics over the scored (non-ignored) samples."""

    count: int
    accuracy: float | None
    mean_confidence: float | None
    mean_entropy: float | None
    mean_true_class_prob: float | None
    numerical: NumericalDiagnostics
    per_sample: PerSampleDiagnostics | None = None


@dataclass(frozen=True)
class LossResult:
    """Result of a cross-entropy computation.

    ``loss`` is None for reduction ``none``. ``loss_sum`` and ``total_weight`` are the
    sufficient statistics of the mean (``mean = loss_sum / total_weight``).
    """

    loss: float | None
    loss_sum: float
    total_weight: float
    per_sample: FloatArray
    probs: FloatArray | None
    log_probs: FloatArray | None
    diagnostics: Diagnostics | None
    label_kind: LabelKind
    precision: Literal["float32", "float64"]
    reduction: Literal["none", "sum", "mean"]


@dataclass(frozen=True)
class SoftmaxResult:
    """Result of :func:`app.core.scoring.score_softmax`."""

    probs: FloatArray | None
    log_probs: FloatArray | None
    logsumexp: FloatArray | None
    diagnostics: Diagnostics | None
    precision: Literal["float32", "float64"]
