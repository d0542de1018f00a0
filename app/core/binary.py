"""Binary and multi-label sigmoid cross-entropy (``binary_cross_entropy_with_logits``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import compute_dtype, precision_name, sum_tolerance
from app.core._layout import Layout
from app.core._reduce import reduce, scaled, unscaled
from app.core._sigmoid import bad_predictions, neg_log_sigmoids, raise_first, times, unusable
from app.core._validate import (
    check_axis,
    check_class_weights,
    check_fits,
    check_loss_options,
    check_numeric,
    check_pos_weight,
    check_sample_weights,
    check_temperature_fits,
)
from app.core.diagnostics import DiagnosticsAccumulator
from app.core.errors import InvalidShape, InvalidValue, NonFiniteInput
from app.core.options import LossOptions
from app.core.results import LossResult

__all__ = ["score_binary_cross_entropy"]

Floats = NDArray[np.floating]


def score_binary_cross_entropy(predictions: Any, labels: Any, opts: LossOptions) -> LossResult:
    """Sigmoid cross-entropy per element, as ``binary_cross_entropy_with_logits``.

    With ``sp(u) = max(u, 0) + log1p(exp(-|u|))`` (softplus, never overflowing),
    ``-log s = sp(-x)`` and ``-log(1 - s) = sp(x)``, the loss is
    ``l = p y sp(-x) + (1 - y) sp(x)``: PyTorch's
    ``(1-y) x + (1 + (p-1) y) (log1p(exp(-|x|)) + max(-x, 0))`` rearranged into
    non-negative terms, so nothing cancels; a zero coefficient gives exactly 0 even
    where ``x = -inf``. ``p`` is ``pos_weight`` (scalar or one per class along the
    class axis), labels may be soft (``y`` in [0, 1]), label smoothing uses
    ``y' = y (1-e) + e/2``. With ``input_kind`` probs: ``-(p y log q + (1-y) log(1-q))``
    with ``q`` clipped to ``[eps, 1-eps]``; log_probs: ``log q`` given.
    Labels equal to ``ignore_index`` are ignored (loss 0, no weight, predictions
    unchecked). ``class_weights`` rescale per class (PyTorch ``weight``) but do not
    enter the total weight, which is the number (or sample weight) of scored
    elements. Shapes: ``[batch, classes]`` -> ``[batch, classes]``, any rank.

    Args:
        predictions: Logits (or probabilities / log-probabilities of the positive class).
        labels: Targets in [0, 1], the predictions' shape.
        opts: Reduction, weights, pos_weight, ignore_index, smoothing, temperature, ...

    Returns:
        The loss and per-element losses; probs are ``sigmoid(x)``, log_probs ``log s``.

    Raises:
        ScoringError: a subclass naming the offending input in ``loc``.

    Example:
        >>> x, y = np.array([0.5, -1.0]), np.array([1.0, 0.0])
        >>> r = score_binary_cross_entropy(x, y, LossOptions())
        >>> print(f"{r.loss:.4f}")
        0.3937
    """
    check_loss_options(opts)
    kind = name = opts.input_kind
    x = check_numeric(predictions, name)
    y = np.asarray(labels)
    if y.shape != x.shape:
        raise InvalidShape(
            f"labels must have the {name}' shape {x.shape}; got {y.shape}", ("labels",)
        )
    y = check_numeric(y, "labels")
    shape = x.shape
    axis = check_axis(opts.axis, max(x.ndim, 1))
    if x.ndim == 0:
        x, y = x.reshape(1), y.reshape(1)
    layout = Layout(x.shape, axis)
    c, n = layout.classes, x.size
    cw = check_class_weights(opts.class_weights, c)
    pw = check_pos_weight(opts.pos_weight, c)
    sw = check_sample_weights(opts.sample_weights, shape)
    dt = compute_dtype(x.dtype, opts.precision)
    for values, field in (
        (x, name),
        (cw, "class_weights"),
        (pw, "pos_weight"),
        (sw, "sample_weights"),
    ):
        check_fits(values, dt, field)
    check_temperature_fits(opts.temperature, dt)
    # Weights scaled by a power of two (exactly): no product or sum of them overflows or
    # vanishes (app.core._reduce).
    cw, cw_exp = scaled(cw)
    sw, sw_exp = scaled(sw)
    e, ii, tol = float(opts.label_smoothing), opts.ignore_index, sum_tolerance(x.dtype)
    bad_x = bad_predictions(kind, tol)

    def bad_y(b: NDArray[Any]) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = ~((b >= 0) & (b <= 1))
        return out if ii is None else out & (b != ii)

    per = np.zeros(n, dt)
    outs = {k: np.empty(n, dt) for k in ("probs", "log_probs") if k in opts.outputs}
    acc = DiagnosticsAccumulator(dt, n, opts.per_sample_diagnostics) if opts.diagnostics else None
    total = 0.0
    any_ignored = False
    sw_blocks = None if sw is None else layout.blocks(np.reshape(sw, x.shape))
    for (rows, xb), (_, yb) in zip(layout.blocks(x), layout.blocks(y), strict=True):
        el = slice(rows.start * c, rows.stop * c)
        ign = np.zeros(yb.shape, bool) if ii is None else yb == ii
        any_ignored = any_ignored or bool(ign.any())
        if bad_y(yb).any():
            raise_first(InvalidValue, y, bad_y(y), "labels", "in [0, 1] (or ignore_index)")
        with np.errstate(invalid="ignore"):
            if (bad_x[0](xb) & ~ign).any():
                full = bad_x[0](x) if ii is None else bad_x[0](x) & (y != ii)
                raise_first(NonFiniteInput, x, full, name, bad_x[2])
            if (bad_x[1](xb) & ~ign).any():
                full = bad_x[1](x) if ii is None else bad_x[1](x) & (y != ii)
                raise_first(InvalidValue, x, full, name, bad_x[2])
        xl = np.array(xb, dtype=dt, copy=True)
        junk = ign & unusable(xb)
        xl[junk] = 0
        if kind == "logits" and opts.temperature != 1.0:
            xl /= dt.type(opts.temperature)
        nls, nlt, pos = neg_log_sigmoids(xl, kind, xb.dtype)
        yf = np.where(ign, 0, yb).astype(dt)
        ys = yf * dt.type(1 - e) + dt.type(e / 2) if e > 0 else yf
        lb = times(ys if pw is None else ys * pw.astype(dt), nls) + times(1 - ys, nlt)
        if cw is not None:
            lb *= cw.astype(dt)
        weight = np.ones(yb.shape)
        if sw_blocks is not None:
            swb = next(sw_blocks)[1]
            lb *= swb.astype(dt)
            weight = weight * swb
        lb[ign] = 0
        weight[ign] = 0
        per[el] = lb.reshape(-1)
        total += float(np.sum(weight, dtype=np.float64))
        if outs or acc is not None:
            with np.errstate(under="ignore"):
                s, t = np.exp(-nls), np.exp(-nlt)
            if "probs" in outs:
                outs["probs"][el] = np.where(junk, np.nan, s).reshape(-1)
            if "log_probs" in outs:
                outs["log_probs"][el] = np.where(junk, np.nan, -nls).reshape(-1)
            if acc is not None:
                xs = xl.reshape(-1) if kind == "logits" else None
                acc.binary(
                    el, xs, pos.reshape(-1), s.reshape(-1), t.reshape(-1), nls.reshape(-1),
                    nlt.reshape(-1), yf.reshape(-1), ~ign.reshape(-1),
                )  # fmt: skip

    def shaped(a: NDArray[Any]) -> NDArray[Any]:
        return layout.unflatten(a.reshape(layout.rows, c)).reshape(shape)

    ignored = np.ones(1, bool) if any_ignored and total == 0 and sw is None else None
    loss, loss_sum = reduce(per, total, opts.reduction, "binary", ignored, sw is not None)
    # Class weights scale the losses only; sample weights the total weight too.
    per, loss, loss_sum, total = unscaled(
        per, loss, loss_sum, total, opts.reduction, cw_exp + sw_exp, sw_exp
    )
    return LossResult(
        loss=loss,
        loss_sum=loss_sum,
        total_weight=total,
        per_sample=shaped(per),
        probs=shaped(outs["probs"]) if "probs" in outs else None,
        log_probs=shaped(outs["log_probs"]) if "log_probs" in outs else None,
        diagnostics=None if acc is None else acc.result(shaped, has_truth=True),
        label_kind="binary",
        precision=precision_name(dt),
        reduction=opts.reduction,
    )
