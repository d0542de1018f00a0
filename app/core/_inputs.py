"""Checks of prediction blocks (finiteness, domain, normalisation) and their log domain."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import sum_tolerance
from app.core._layout import Layout
from app.core._validate import at
from app.core.errors import InvalidOption, InvalidValue, NonFiniteInput, ScoringError
from app.core.softmax import logsumexp

__all__ = ["check_block", "log_domain", "unusable_rows"]

Mask = NDArray[np.bool_]


def _non_finite(kind: str) -> Any:
    if kind == "probs":
        return lambda b: ~np.isfinite(b)
    # -inf is a masked class (logits) or log 0 (log_probs): allowed.
    return lambda b: np.isnan(b) | (b == np.inf)


def _out_of_domain(kind: str, tol: float) -> Any:
    if kind == "probs":
        return lambda b: (b < 0) | (b > 1)
    return lambda b: b > tol


def _bad_rows(kind: str, tol: float) -> Any:
    if kind == "logits":
        return lambda b: np.all(b == -np.inf, axis=1)
    if kind == "probs":
        return lambda b: ~(np.abs(np.sum(b, axis=1, dtype=np.float64) - 1) <= tol)
    return lambda b: ~(np.abs(logsumexp(b.astype(np.float64), axis=1)) <= tol)


def check_block(
    layout: Layout,
    a: NDArray[Any],
    block: NDArray[Any],
    rows: slice | NDArray[np.intp],
    skip: Mask | None,
    kind: str,
    name: str,
    non_finite: type[ScoringError] = NonFiniteInput,
) -> None:
    """Raise for the first problem of ``block``, located over all of ``a``.

    Order: NaN/+inf (``non_finite``: NonFiniteInput for predictions), then values
    outside the domain of ``kind`` (probabilities in [0, 1], log-probabilities <= 0),
    then rows: an all ``-inf`` logits row, probabilities not summing to 1, log-probabilities whose
    logsumexp is not 0 (tolerance by dtype, see ``sum_tolerance``).
    """
    tol = sum_tolerance(a.dtype)
    if a.dtype.kind != "f":
        if kind == "logits":  # integers are always finite and in the domain
            return
        block = block.astype(np.float64)
    blk_skip = None if skip is None else skip[rows]
    checks: list[tuple[Any, type[ScoringError], str]] = [
        (_non_finite(kind), non_finite, "non-finite values")
    ]
    if kind != "logits":
        checks.append((_out_of_domain(kind, tol), InvalidValue, "values out of range"))
    with np.errstate(all="ignore"):
        for bad, error, what in checks:
            mask = bad(block)
            if blk_skip is not None:
                mask &= ~blk_skip[:, None]
            if mask.any():
                index, n = layout.first_bad_element(a, bad, skip)
                domain = {
                    "logits": "finite or -inf",
                    "log_probs": "finite or -inf, and <= 0",
                    "probs": "finite and in [0, 1]",
                }[kind]
                raise error(
                    f"{name} must be {domain}; got {a[index]} at {at(index)} ({n} {what})",
                    (name, *index),
                )
        bad_row = _bad_rows(kind, tol)
        mask = bad_row(block)
        if blk_skip is not None:
            mask &= ~blk_skip
        if mask.any():
            index, n = layout.first_bad_row(a, bad_row, skip)
            what = {
                "logits": "has no finite logit (all -inf)",
                "probs": f"does not sum to 1 (tolerance {tol:g})",
                "log_probs": f"does not have logsumexp 0 (tolerance {tol:g})",
            }[kind]
            raise InvalidValue(f"{name} row {at(index)} {what} ({n} rows)", (name, *index))


def log_domain(
    block: NDArray[Any],
    kind: str,
    dtype: np.dtype[np.floating],
    temperature: float,
    skip: Mask | None,
    ignored: Mask | None = None,
) -> NDArray[np.floating]:
    """A fresh ``dtype`` copy of ``block`` in the log domain: logits / T, log_probs, log p.

    Skipped rows (ignored ones that cannot be computed) are set to 0 so that their
    contents, possibly NaN, never reach the arithmetic; ``ignored`` rows are not checked.
    Probabilities are clipped to ``[eps, 1 - eps]`` first (scikit-learn's ``log_loss``),
    with ``eps`` of the coarser of input and compute dtypes so that ``1 - eps`` stays
    below 1.
    """
    x: NDArray[np.floating] = np.array(block, dtype=dtype, copy=True)
    if skip is not None:
        x[skip] = 0
    if kind == "logits":
        if temperature != 1.0:
            with np.errstate(over="ignore", divide="ignore"):
                x /= dtype.type(temperature)
            # A tiny temperature can push finite logits past the dtype's range; in an
            # ignored row that makes the row unusable (NaN outputs), not an error.
            lost = np.isinf(x) & np.isfinite(block) if temperature < 1.0 else None
            if lost is not None and ignored is not None:
                lost &= ~ignored[:, None]
            if lost is not None and lost.any():
                raise InvalidOption(
                    f"temperature {temperature:g} makes finite logits overflow {dtype.name}",
                    ("temperature",),
                )
    elif kind == "probs":
        eps = max(_eps(block.dtype), float(np.finfo(dtype).eps))
        np.clip(x, eps, 1 - eps, out=x)
        np.log(x, out=x)
    return x


def _eps(dtype: np.dtype[Any]) -> float:
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)


def unusable_rows(block: NDArray[Any]) -> Mask:
    """Rows that cannot be scored: NaN or +inf somewhere, or no finite value at all.

    Ignored samples may hold such rows; they are zeroed before the arithmetic and
    their probs/log_probs outputs are NaN. Other ignored rows are computed as usual.
    """
    if block.dtype.kind != "f":
        return np.zeros(len(block), bool)
    out: Mask = np.any(np.isnan(block) | (block == np.inf), axis=1)
    out |= np.all(block == -np.inf, axis=1)
    return out
