"""Compute precision, tolerances and the exp() limits of a floating dtype."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["Limits", "compute_dtype", "exp_limits", "limits", "precision_name", "sum_tolerance"]

# Tolerance for "sums to 1" checks (probability labels, probs rows, log_probs rows),
# scaled to the dtype of the array checked. JSON decimals of float32 model outputs
# carry ~7 significant digits, so float64 cannot demand much more than 1e-6.
_SUM_TOLERANCE: dict[str, float] = {"float16": 1e-2, "float32": 1e-4, "float64": 1e-6}


def sum_tolerance(dtype: np.dtype[np.generic]) -> float:
    """Absolute tolerance for "sums to 1" of an array of ``dtype``.

    float16 1e-2, float32 1e-4, float64 (and integers, which arrive from JSON) 1e-6.

    Args:
        dtype: dtype of the array being checked.

    Returns:
        The tolerance.

    Example:
        >>> print(f"{sum_tolerance(np.dtype(np.float32)):.4f}")
        0.0001
    """
    return _SUM_TOLERANCE.get(dtype.name, _SUM_TOLERANCE["float64"])


def compute_dtype(
    pred_dtype: np.dtype[np.generic], precision: Literal["float32", "float64"] | None
) -> np.dtype[np.floating]:
    """The dtype to compute in: ``precision``, or float32 for float16/float32 inputs."""
    if precision is not None:
        return np.dtype(precision)
    if pred_dtype in (np.dtype(np.float16), np.dtype(np.float32)):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def precision_name(dtype: np.dtype[np.floating]) -> Literal["float32", "float64"]:
    """``"float32"`` or ``"float64"`` for a compute dtype."""
    return "float32" if dtype == np.dtype(np.float32) else "float64"


@cache
def exp_limits(dtype: np.dtype[np.floating]) -> tuple[float, float]:
    """Thresholds where a textbook ``exp(x)`` fails in ``dtype``.

    Returns ``(over, under)``: ``exp(x)`` overflows to inf iff ``x > over`` (about
    ``log(finfo.max)``: 88.72 float32, 709.78 float64) and underflows to 0 iff
    ``x <= under`` (about ``log(smallest_subnormal / 2)``: -103.97 float32, -745.13
    float64). Found by bisection on NumPy's own ``exp`` so the two always agree.
    """
    info = np.finfo(dtype)
    with np.errstate(over="ignore", under="ignore"):
        over = _boundary(dtype, 0.0, 2.0 * float(np.log(info.max)), np.isfinite)
        under = _boundary(dtype, 4.0 * float(np.log(info.smallest_subnormal)), 0.0, _is_zero)
    return over, under


def _is_zero(e: NDArray[np.floating]) -> bool:
    return bool(e == 0)


def _boundary(
    dtype: np.dtype[np.floating],
    lo: float,
    hi: float,
    pred: Callable[[NDArray[np.floating]], object],
) -> float:
    """Largest ``x`` in ``dtype`` with ``pred(exp(x))`` true, given it holds at lo only."""
    a, b = np.asarray(lo, dtype), np.asarray(hi, dtype)
    while True:
        mid = np.asarray((a + b) / 2, dtype)
        if mid in (a, b):
            return float(a)
        if pred(np.exp(mid)):
            a = mid
        else:
            b = mid


@dataclass(frozen=True)
class Limits:
    """A compute dtype's range: smallest normal, its log, largest finite, exp() limits."""

    tiny: float
    log_tiny: float
    max: float
    over: float
    under: float


@cache
def limits(dtype: np.dtype[np.floating]) -> Limits:
    """The :class:`Limits` of ``dtype``, computed once."""
    info = np.finfo(dtype)
    return Limits(float(info.tiny), math.log(float(info.tiny)), float(info.max), *exp_limits(dtype))
