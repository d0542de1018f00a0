"""Token-level negative log-likelihood and perplexity of padded sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["SequenceMetrics", "sequence_metrics"]

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class SequenceMetrics:
    """Per-sequence token counts, mean NLL and perplexity (NaN for a sequence without
    tokens), and the batch's totals: sequences, tokens and the sum of token NLLs."""

    tokens: NDArray[np.int64]
    nll: Floats
    perplexity: Floats
    sequences: int
    token_count: int
    nll_sum: float


def sequence_metrics(token_nll: Floats, scored: NDArray[np.bool_]) -> SequenceMetrics:
    """Mean NLL and perplexity per sequence, from per-token NLL ``-log p(y_t)``.

    ``token_nll`` and ``scored`` have shape ``[sequences, tokens]`` (any further
    per-sample axes flattened into tokens); padding (``ignore_index``) is not scored.
    For sequence ``i`` with scored tokens ``T_i``: ``nll_i = sum_{t in T_i} nll_t / |T_i|``
    and ``perplexity_i = exp(nll_i)``. The NLL comes from log-probabilities, never
    from rounded probabilities, so a token of probability 1e-300 costs 690.8 exactly.

    Example:
        >>> nll = np.array([[1.0, 3.0, 0.0], [2.0, 0.0, 0.0]])
        >>> m = sequence_metrics(nll, np.array([[True, True, False], [True, False, False]]))
        >>> print(m.nll, m.tokens, m.nll_sum)
        [2. 2.] [2 1] 6.0
    """
    n = token_nll.shape[0]
    flat = token_nll.reshape(n, -1).astype(np.float64)
    mask = scored.reshape(n, -1)
    tokens = np.count_nonzero(mask, axis=1).astype(np.int64)
    sums = np.sum(flat, axis=1, where=mask)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        nll = np.where(tokens > 0, sums / np.maximum(tokens, 1), np.nan)
        ppl = np.exp(nll)
    return SequenceMetrics(
        tokens=tokens,
        nll=nll,
        perplexity=ppl,
        sequences=n,
        token_count=int(np.sum(tokens)),
        nll_sum=float(np.sum(sums)),
    )
