"""Softmax scoring without labels: probabilities, log-probabilities, log-sum-exp."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core._dtypes import compute_dtype, precision_name
from app.core._inputs import check_block, log_domain
from app.core._layout import Layout
from app.core._validate import check_axis, check_fits, check_numeric, check_temperature
from app.core.diagnostics import DiagnosticsAccumulator
from app.core.errors import InvalidOption, InvalidShape
from app.core.options import SoftmaxOptions
from app.core.results import SoftmaxResult
from app.core.softmax import shifted_rows

__all__ = ["score_softmax"]

_OUTPUTS = frozenset({"probs", "log_probs", "logsumexp"})


def score_softmax(logits: Any, opts: SoftmaxOptions) -> SoftmaxResult:
    """Softmax of ``logits / T`` over the class axis, block by block.

    ``log_softmax(x)_j = z_j - s``, ``softmax = exp(log_softmax)`` and
    ``logsumexp = m + s`` with ``m = max_k x_k``, ``z = x - m`` and
    ``s = log1p(sum_{k != argmax} exp z_k)`` (Blanchard, Higham & Higham, 2021).
    Shapes: ``[batch, classes]`` -> probs/log_probs ``[batch, classes]`` (the class
    axis where it was), logsumexp ``[batch]``. ``-inf`` logits are masked classes.

    Args:
        logits: Logits of any rank >= 1 (float or integer).
        opts: Temperature, class axis, precision, outputs, diagnostics.

    Returns:
        The requested outputs and diagnostics (no accuracy or true-class probability).

    Raises:
        ScoringError: NonFiniteInput for NaN/+inf, InvalidValue for a row without a
            finite logit, InvalidShape/InvalidOption for shapes and options.

    Example:
        >>> r = score_softmax(np.array([[1.0, 2.0, 3.0]]), SoftmaxOptions())
        >>> print(np.round(r.probs, 4))
        [[0.09   0.2447 0.6652]]
    """
    temperature = check_temperature(opts.temperature)
    if opts.precision not in (None, "float32", "float64"):
        raise InvalidOption(
            f"precision must be 'float32' or 'float64'; got {opts.precision!r}", ("precision",)
        )
    if not set(opts.outputs) <= _OUTPUTS:
        raise InvalidOption(f"unknown outputs {sorted(set(opts.outputs) - _OUTPUTS)}", ("outputs",))
    x = check_numeric(logits, "logits")
    if x.ndim == 0:
        raise InvalidShape("logits must have a class axis; got a scalar", ("logits",))
    layout = Layout(x.shape, check_axis(opts.axis, x.ndim))
    dt = compute_dtype(x.dtype, opts.precision)
    check_fits(x, dt, "logits")
    check_fits(temperature, dt, "temperature")
    n, c = layout.rows, layout.classes
    outs = {k: np.empty((n, c), dt) for k in ("probs", "log_probs") if k in opts.outputs}
    lse = np.empty(n, dt) if "logsumexp" in opts.outputs else None
    acc = DiagnosticsAccumulator(dt, n, False) if opts.diagnostics else None
    for rows, block in layout.blocks(x):
        check_block(layout, x, block, rows, None, "logits", "logits")
        xl = log_domain(block, "logits", dt, temperature, None)
        everyone = np.ones(len(xl), bool)
        if acc is not None:
            acc.numerical(xl, everyone)
        if lse is not None:
            lse[rows] = np.max(xl, axis=1)
        z, s = shifted_rows(xl)
        if lse is not None:
            lse[rows] += s
        if outs or acc is not None:
            lp = z - s[:, None]
            p = np.exp(lp)
            if "probs" in outs:
                outs["probs"][rows] = p
            if "log_probs" in outs:
                outs["log_probs"][rows] = lp
            if acc is not None:
                acc.rows(rows, z, lp, p, everyone, None)
    return SoftmaxResult(
        probs=layout.unflatten(outs["probs"]) if "probs" in outs else None,
        log_probs=layout.unflatten(outs["log_probs"]) if "log_probs" in outs else None,
        logsumexp=None if lse is None else lse.reshape(layout.lead_shape),
        diagnostics=None if acc is None else acc.result(None, has_truth=False),
        precision=precision_name(dt),
    )
