"""Softmax of a batch without labels: probabilities, log-probabilities, logsumexp, diagnostics."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core._dtypes import compute_dtype, precision_name
from app.core._layout import Layout
from app.core._rows import Job, run
from app.core._validate import (
    check_axis,
    check_fits,
    check_numeric,
    check_temperature,
    check_temperature_fits,
)
from app.core.diagnostics import diagnostics_of
from app.core.errors import InvalidOption, InvalidShape
from app.core.options import SoftmaxOptions
from app.core.results import SoftmaxResult

__all__ = ["score_softmax"]

_OUTPUTS = frozenset({"probs", "log_probs", "logsumexp"})


def score_softmax(logits: Any, opts: SoftmaxOptions) -> SoftmaxResult:
    """Softmax of ``logits / T`` over the class axis, block by block (:mod:`app.core._rows`).

    ``log_softmax(x)_j = z_j - s``, ``softmax_j = exp(z_j) / (1 + R)`` and
    ``logsumexp = m + s`` with ``m = max_k x_k``, ``z = x - m``, ``R`` the sum of the
    other ``exp z_k`` and ``s = log1p R`` (Blanchard, Higham & Higham, 2021).
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
    check_temperature_fits(temperature, dt)
    n, c = layout.rows, layout.classes
    outs = {k: np.empty((n, c), dt) for k in ("probs", "log_probs") if k in opts.outputs}
    job = Job(
        x=x,
        layout=layout,
        dt=dt,
        temperature=temperature,
        probs=outs.get("probs"),
        log_probs=outs.get("log_probs"),
        lse=np.empty(n, dt) if "logsumexp" in opts.outputs else None,
        diagnostics=opts.diagnostics,
    )
    part = run(job)
    return SoftmaxResult(
        probs=layout.unflatten(outs["probs"]) if "probs" in outs else None,
        log_probs=layout.unflatten(outs["log_probs"]) if "log_probs" in outs else None,
        logsumexp=None if job.lse is None else job.lse.reshape(layout.lead_shape),
        diagnostics=None if part is None else diagnostics_of(part, None, np.asarray, False),
        precision=precision_name(dt),
    )
