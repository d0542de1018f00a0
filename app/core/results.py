"""Results of the scoring functions: frozen dataclasses of NumPy arrays and floats."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PER_SAMPLE_FIELDS",
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
    stable softmax that are exactly 0. Counted over scored (non-ignored) rows, on
    what enters the exponentials (logits / T, log_probs, or log of clipped probs).

    Binary cross-entropy counts elements instead of rows: ``overflow_rows`` where a
    textbook ``exp(-x)`` overflows, ``underflow_rows`` where a textbook
    ``1 / (1 + exp(-x))`` is 0 or 1 (so ``log s`` or ``log(1 - s)`` is ``-inf``),
    both for logits input only (0 otherwise); ``zero_probs`` where the stable ``s``
    or ``1 - s`` is exactly 0.
    """

    max_abs_logit: float
    overflow_rows: int
    underflow_rows: int
    zero_probs: int


@dataclass(frozen=True)
class PerSampleDiagnostics:
    """Per-sample diagnostics, each with the per-sample output's shape.

    Ignored positions (label == ignore_index) hold -1 in ``predicted_class`` and
    ``true_class_rank`` and NaN in the float fields, whatever their inputs were.
    ``margin`` is top-1 minus top-2 probability (top-1 when there is one class);
    ``true_class_rank`` is 1 + the number of classes with a larger logit or an equal
    one at a lower index, as ``argmax`` breaks ties (probability labels: the rank of
    ``argmax y``), so rank 1 is exactly a correct prediction. Binary, per element: predicted class
    ``x > 0``, confidence ``max(s, 1 - s)``, margin ``|2 s - 1|``, rank 1 if
    ``(x > 0) == (y >= 0.5)`` else 2, true-class probability ``y s + (1 - y)(1 - s)``.
    """

    predicted_class: NDArray[np.int64]
    confidence: FloatArray
    true_class_prob: FloatArray
    margin: FloatArray
    true_class_rank: NDArray[np.int64]
    entropy: FloatArray


# The per-sample diagnostics by name, in the order responses list them.
PER_SAMPLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PerSampleDiagnostics))


@dataclass(frozen=True)
class Diagnostics:
    """Batch diagnostics over the scored (non-ignored) samples, unweighted means.

    Means are None when no sample is scored; ``accuracy`` and
    ``mean_true_class_prob`` are None for :func:`score_softmax` (no labels).
    """

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
    """Result of :func:`app.core.probabilities.score_softmax`."""

    probs: FloatArray | None
    log_probs: FloatArray | None
    logsumexp: FloatArray | None
    diagnostics: Diagnostics | None
    precision: Literal["float32", "float64"]
