"""The exact answers: softmax and cross-entropy of one row at 50 digits (mpmath), and bounds.

The reference takes the exact binary values the service computes with (the inputs after
the cast to the compute precision), so any difference is the service's own rounding.
Tolerances are relative, ``TOL = 64 eps`` of the compute precision (float32 7.6e-6,
float64 1.4e-14), times the conditioning of each quantity:

- the loss ``-log p_y``: ``LOSS_TOL = 16 eps``, a sum of non-negative terms, times
  ``max(1, |z|/16)`` for the rounding of the shifted logits (:func:`assert_loss`);
- a probability ``p`` that is a normal number: ``TOL max(1, |log p|)`` (exp turns the
  rounding of its argument into a relative error: softmax's own conditioning); a
  subnormal one has lost digits whoever computes it and is not compared;
- ``log p``: ``TOL``, times the same factor; ``logsumexp``: ``TOL max(|lse|, |max x|)``
  (``m + s`` rounds ``m``);
- the entropy ``H = sum_k p_k (-log p_k)``: ``TOL max(1, max |log p_k|)`` over the
  probabilities that are normal numbers, as each term carries its probability's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

mpmath.mp.dps = 50

DTYPES = (np.float32, np.float64)
TOL = {np.dtype(dt): 64 * float(np.finfo(dt).eps) for dt in DTYPES}
# The loss alone: measured at most 5.3 eps over every regime of bench/accuracy.py, where
# PyTorch loses every digit of small losses (bench/README.md, "Accuracy").
LOSS_TOL = {np.dtype(dt): 16 * float(np.finfo(dt).eps) for dt in DTYPES}


@dataclass(frozen=True)
class Exact:
    """One row's exact softmax: log-sum-exp, log-probabilities, probabilities, entropy."""

    x: list[Any]
    lse: Any
    log_probs: list[Any]
    probs: list[Any]
    entropy: Any

    def loss(self, y: int) -> Any:
        """``-log p_y = (m - x_y) + log1p R``: a sum of non-negative terms, full relative
        precision however small (``lse - x_y`` would keep 50 digits of ``lse`` only)."""
        return -self.log_probs[y]

    @property
    def confidence(self) -> Any:
        return max(self.probs)


def exact(row: np.ndarray) -> Exact:
    """The exact softmax of ``row``'s values (any float dtype; -inf is a masked class).

    With ``m`` the maximum (first of them, ``j``) and ``R = sum_{k != j} exp(x_k - m)``:
    ``lse = m + log1p R`` and ``log p_k = (x_k - m) - log1p R``. At 50 digits ``log`` of
    ``1 + R`` would keep only the digits of ``R`` that fit beside the 1.
    """
    xs = [mpmath.mpf(float(v)) if np.isfinite(v) else mpmath.ninf for v in row]
    m = max(xs)
    j = xs.index(m)
    rest = mpmath.log1p(mpmath.fsum(mpmath.exp(v - m) for k, v in enumerate(xs) if k != j))
    lse = m + rest
    log_probs = [(v - m) - rest for v in xs]
    probs = [mpmath.exp(v) for v in log_probs]
    entropy = mpmath.fsum(-p * lp for p, lp in zip(probs, log_probs, strict=True) if p > 0)
    return Exact(xs, lse, log_probs, probs, entropy)


def tiny(dt: Any) -> float:
    return float(np.finfo(dt).tiny)


def assert_loss(got: float, ref: Exact, y: int, dt: Any, where: Any = None) -> None:
    """The loss of label ``y``: ``LOSS_TOL`` times ``max(1, |z|_max / 16)``.

    ``z_k = x_k - max x`` is rounded (any method that shifts rounds it, PyTorch's
    included), and exp turns that into a relative error of ``|z_k| eps / 2`` in each
    term: the factor is that conditioning, over the terms that are normal numbers.
    """
    w = float(ref.loss(y))
    bound = LOSS_TOL[np.dtype(dt)] * w * _shift_conditioning(ref, dt) + tiny(dt)
    assert abs(got - w) <= bound, (where, got, w)


def _shift_conditioning(ref: Exact, dt: Any) -> float:
    """``max(1, |z|_max / 16)`` over the terms that are normal numbers (:func:`assert_loss`)."""
    top = max(ref.x)
    normal = [abs(float(v - top)) for v, p in zip(ref.x, ref.probs, strict=True) if p >= tiny(dt)]
    return max([1.0, *(z / 16 for z in normal)])


def assert_probs(got: np.ndarray, ref: Exact, dt: Any, where: Any = None) -> None:
    """Every probability that is a normal number, within softmax's conditioning."""
    for k, (p, lp) in enumerate(zip(ref.probs, ref.log_probs, strict=True)):
        if p >= tiny(dt):
            bound = TOL[np.dtype(dt)] * float(p) * max(1.0, -float(lp))
            assert abs(float(got[k]) - float(p)) <= bound, (where, k, float(got[k]), float(p))


def assert_log_probs(got: np.ndarray, ref: Exact, dt: Any, where: Any = None) -> None:
    factor = _shift_conditioning(ref, dt)
    for k, lp in enumerate(ref.log_probs):
        if lp == mpmath.ninf:
            assert got[k] == -np.inf, (where, k)
            continue
        bound = TOL[np.dtype(dt)] * abs(float(lp)) * factor + tiny(dt)
        assert abs(float(got[k]) - float(lp)) <= bound, (where, k, float(got[k]), float(lp))


def assert_lse(got: float, ref: Exact, dt: Any, where: Any = None) -> None:
    scale = max(abs(float(ref.lse)), abs(float(max(ref.x))))
    assert abs(got - float(ref.lse)) <= TOL[np.dtype(dt)] * scale + tiny(dt), (where, got)


def entropy_bound(ref: Exact, dt: Any) -> float:
    logs = [-float(lp) for p, lp in zip(ref.probs, ref.log_probs, strict=True) if p >= tiny(dt)]
    return TOL[np.dtype(dt)] * float(ref.entropy) * max([1.0, *logs]) + tiny(dt)


def assert_probability(got: float, want: Any, dt: Any, where: Any = None) -> None:
    """A probability-valued diagnostic (confidence, true-class probability) of one row."""
    if want >= tiny(dt):
        bound = TOL[np.dtype(dt)] * float(want) * max(1.0, -float(mpmath.log(want)))
        assert abs(got - float(want)) <= bound, (where, got, float(want))
