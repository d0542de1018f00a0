"""Batch and per-sample diagnostics, accumulated block by block.

Means are unweighted, over scored (non-ignored) samples. Per-sample arrays hold -1
(integers) and NaN (floats) at ignored positions, whatever their inputs were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import exp_limits
from app.core._rows import Partial
from app.core.results import (
    PER_SAMPLE_FIELDS,
    Diagnostics,
    NumericalDiagnostics,
    PerSampleDiagnostics,
)

__all__ = ["DiagnosticsAccumulator", "diagnostics_of", "per_sample_arrays"]

Mask = NDArray[np.bool_]
Floats = NDArray[np.floating]


def per_sample_arrays(dtype: np.dtype[np.floating], size: int) -> dict[str, NDArray[Any]]:
    """Per-sample diagnostic arrays of ``size`` elements: -1 and NaN until written."""
    ints = {k: np.full(size, -1, np.int64) for k in ("predicted_class", "true_class_rank")}
    floats = {
        k: np.full(size, np.nan, dtype)
        for k in ("confidence", "true_class_prob", "margin", "entropy")
    }
    return {**ints, **floats}


def diagnostics_of(
    part: Partial,
    arrays: dict[str, NDArray[Any]] | None,
    reshape: Callable[[NDArray[Any]], NDArray[Any]],
    has_truth: bool,
) -> Diagnostics:
    """Diagnostics from their sums: means over the scored samples, counts as they are.

    ``arrays``: the flat per-sample ones, which ``reshape`` gives the per-sample shape.
    Softmax rows bring their sums from :func:`app.core._rows.run`, binary cross-entropy
    from :class:`DiagnosticsAccumulator`.
    """
    n = part.count
    conf, ent, tcp = part.sums
    per = None
    if arrays is not None:
        per = PerSampleDiagnostics(**{k: reshape(v) for k, v in arrays.items()})
    return Diagnostics(
        count=n,
        accuracy=(part.correct / n if n else None) if has_truth else None,
        mean_confidence=conf / n if n else None,
        mean_entropy=ent / n if n else None,
        mean_true_class_prob=(tcp / n if n else None) if has_truth else None,
        numerical=NumericalDiagnostics(
            max_abs_logit=part.max_abs,
            overflow_rows=part.overflow,
            underflow_rows=part.underflow,
            zero_probs=part.zero_probs,
        ),
        per_sample=per,
    )


class DiagnosticsAccumulator:
    """Binary cross-entropy's diagnostics: sums and, if asked, the per-sample arrays.

    ``size`` is the number of loss elements.
    """

    def __init__(self, dtype: np.dtype[np.floating], size: int, per_sample: bool) -> None:
        self.dtype = dtype
        self.over, self.under = exp_limits(dtype)
        self.count = 0
        self.correct = 0
        self.sums = np.zeros(3)  # confidence, entropy, true-class probability
        self.max_abs = 0.0
        self.overflow = self.underflow = self.zero_probs = 0
        self.arrays = per_sample_arrays(dtype, size) if per_sample else None

    def binary(
        self,
        sl: slice,
        x: Floats | None,
        pos: Mask,
        s: Floats,
        t: Floats,
        nls: Floats,
        nlt: Floats,
        y: Floats,
        scored: Mask,
    ) -> None:
        """Binary, per element (flat): ``s`` = P(positive), ``t = 1 - s``, ``nls = -log s``,
        ``nlt = -log t``, ``pos`` the predicted label, ``y`` the (soft) target.

        Correct: ``pos == (y >= 0.5)``; confidence ``max(s, t)``; true-class probability
        ``y s + (1 - y) t``; entropy ``s nls + t nlt``; margin ``|s - t|``; rank 1 if
        correct else 2. With logits ``x``: overflow counts elements where a textbook
        ``exp(-x)`` overflows, underflow those where a textbook ``1 / (1 + exp(-x))``
        is 0 or 1 (so ``log s`` or ``log(1 - s)`` is ``-inf``); zero_probs counts
        elements whose stable ``s`` or ``1 - s`` is exactly 0.
        """
        with np.errstate(all="ignore"):
            correct = pos == (y >= 0.5)
            conf = np.maximum(s, t)
            tcp = y * s + (1 - y) * t
            ent = np.where(s > 0, s * nls, 0) + np.where(t > 0, t * nlt, 0)
            if x is not None:
                xs = x[scored]
                finite = np.isfinite(xs)
                if finite.any():
                    self.max_abs = max(self.max_abs, float(np.max(np.abs(xs[finite]))))
                self.overflow += int(np.count_nonzero(-xs > self.over))
                naive = 1 / (1 + np.exp(-xs))
                self.underflow += int(np.count_nonzero((naive == 0) | (naive == 1)))
        self.count += int(np.count_nonzero(scored))
        self.correct += int(np.count_nonzero(correct & scored))
        self.zero_probs += int(np.count_nonzero(((s == 0) | (t == 0)) & scored))
        for i, v in enumerate((conf, ent, tcp)):
            self.sums[i] += float(np.sum(v[scored], dtype=np.float64))
        if self.arrays is not None:
            rank = np.where(correct, 1, 2)
            self._store(sl, scored, pos.astype(np.int64), conf, tcp, np.abs(s - t), rank, ent)

    def _store(
        self, sl: slice | NDArray[np.intp], scored: Mask, *values: NDArray[Any] | None
    ) -> None:
        assert self.arrays is not None
        for name, v in zip(PER_SAMPLE_FIELDS, values, strict=True):
            if v is not None:
                out = self.arrays[name][sl]
                out[scored] = v[scored]
                self.arrays[name][sl] = out  # a no-op for a slice, needed for row indices

    def result(self, shape: Any, has_truth: bool) -> Diagnostics:
        """Means over the scored samples; ``shape`` reshapes flat per-sample arrays."""
        sums = (float(self.sums[0]), float(self.sums[1]), float(self.sums[2]))
        part = Partial(
            self.count,
            self.correct,
            sums,
            self.max_abs,
            self.overflow,
            self.underflow,
            self.zero_probs,
        )
        return diagnostics_of(part, self.arrays, shape, has_truth)
