"""Softmax cross-entropy with class-index or probability labels (PyTorch semantics)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import compute_dtype, precision_name
from app.core._gate import admit
from app.core._layout import Layout
from app.core._reduce import reduce, scaled, unscaled
from app.core._rows import PLAIN_ELEMENTS, Job, plain, run
from app.core._validate import (
    check_axis,
    check_class_weights,
    check_fits,
    check_index_labels,
    check_loss_options,
    check_numeric,
    check_sample_weights,
    check_temperature_fits,
)
from app.core.diagnostics import diagnostics_of, per_sample_arrays
from app.core.errors import InvalidOption, InvalidShape
from app.core.options import LossOptions
from app.core.results import LossResult

__all__ = ["score_cross_entropy"]

Floats = NDArray[np.floating]


def score_cross_entropy(predictions: Any, labels: Any, opts: LossOptions) -> LossResult:
    """Softmax cross-entropy ``l = lse(x) - x_y``, as ``torch.nn.functional.cross_entropy``.

    Labels are class indices when their shape is the predictions' shape without the
    class axis, probabilities when it equals the predictions' shape. With
    ``z = x - m`` (``m`` the row max) and ``s = log sum_c exp z_c`` every term
    ``-log p_c = s - z_c`` is >= 0, so sums never cancel:

    - index labels: ``l = (1-e) w_y (s - z_y) + e/C sum_c w_c (s - z_c)``
    - probability labels: ``l = sum_c w_c y'_c (s - z_c)``, ``y' = y (1-e) + e/C``

    with ``w`` the class weights (ones), ``e`` the label smoothing, and terms with zero
    weight exactly 0 even where ``z_c = -inf``. Each ``l`` is multiplied by its sample
    weight. Shapes: ``[batch, classes]`` -> ``[batch]`` (any rank, class axis
    ``opts.axis``). Reference: Blanchard, Higham & Higham (2021) for ``s``.

    Samples whose label equals ``opts.ignore_index`` (index labels only, as in
    PyTorch) get loss 0 and no weight, and their predictions are not checked; their
    probs/log_probs outputs are computed as usual when the row is usable and NaN
    when it holds NaN, +inf or no finite value.

    Args:
        predictions: Logits, log-probabilities or probabilities (``opts.input_kind``).
        labels: Class indices (integers) or probabilities.
        opts: Reduction, weights, ignore_index, smoothing, temperature, outputs, ...

    Returns:
        The loss, its sufficient statistics, per-sample losses, optional outputs and
        diagnostics.

    Raises:
        ScoringError: a subclass naming the offending input in ``loc``.

    Example:
        >>> r = score_cross_entropy(np.array([[1.0, 2.0, 3.0]]), np.array([2]), LossOptions())
        >>> print(f"{r.loss:.4f}")
        0.4076
    """
    admitted = admit(predictions, labels, opts)
    if admitted is not None:
        # The common request, its checks proved by its types and options (app.core._gate):
        # labels in range and the compute dtype the input's own. Its data are checked by
        # the kernel's arithmetic, as everyone's.
        x, (dt, unsigned) = predictions, admitted
        layout = Layout(x.shape, x.ndim - 1)
        flat_y = labels.reshape(-1)
        # Read as unsigned, a negative label is huge: one argmax checks both ends.
        wide = flat_y.view(unsigned)
        if wide.item(wide.argmax()) < layout.classes:
            quick = _plain(x, layout, flat_y, opts)
            if quick is not None:
                return quick
            return _score(x, layout, dt, "index", flat_y, None, None, None, opts)
    return _score_checked(predictions, labels, opts)


_PLAIN_OUTPUTS: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"per_sample"}),
    frozenset({"per_sample", "probs"}),
)


def _plain(
    x: NDArray[Any], layout: Layout, y: NDArray[Any], opts: LossOptions
) -> LossResult | None:
    """An admitted request of one plain block through :func:`app.core._rows.plain`, or None."""
    n, c = layout.rows, layout.classes
    if (
        x.size > PLAIN_ELEMENTS
        or c < 2
        or not x.flags.c_contiguous
        or opts.per_sample_diagnostics
        or opts.outputs not in _PLAIN_OUTPUTS
    ):
        return None
    per = np.empty(n, x.dtype)
    probs = np.empty((n, c), x.dtype) if "probs" in opts.outputs else None
    part = plain(x.reshape(n, c), y, per, probs, opts.diagnostics)
    if part is False:
        return None
    # reduce()'s sum without its overflow guard (an errstate per call): |x| is bounded here.
    loss_sum = float(np.add.reduce(per, axis=None, dtype=np.float64))
    reduction = opts.reduction
    lead = layout.lead_shape
    return LossResult(
        loss=None if reduction == "none" else loss_sum / n if reduction == "mean" else loss_sum,
        loss_sum=loss_sum,
        total_weight=float(n),
        per_sample=per.reshape(lead),
        probs=None if probs is None else probs.reshape(x.shape),
        log_probs=None,
        diagnostics=None if part is None else diagnostics_of(part, None, np.asarray, True),
        label_kind="index",
        precision=precision_name(x.dtype),
        reduction=reduction,
    )


def _score_checked(predictions: Any, labels: Any, opts: LossOptions) -> LossResult:
    """:func:`score_cross_entropy` for any input: every option and array checked first."""
    check_loss_options(opts)
    name = opts.input_kind
    if opts.pos_weight is not None:
        raise InvalidOption("pos_weight applies to binary cross-entropy only", ("pos_weight",))
    x = check_numeric(predictions, name)
    if x.ndim == 0:
        raise InvalidShape(f"{name} must have a class axis; got a scalar", (name,))
    layout = Layout(x.shape, check_axis(opts.axis, x.ndim))
    y = np.asarray(labels)
    c = layout.classes
    skip: NDArray[np.bool_] | None = None
    idx = None
    if y.shape == layout.lead_shape:
        label_kind = "index"
        idx, ignored = check_index_labels(y, c, opts.ignore_index)
        skip = ignored if ignored.any() else None
    elif y.shape == x.shape:
        label_kind = "probability"
        y = check_numeric(y, "labels")
    else:
        raise InvalidShape(
            f"labels must have shape {layout.lead_shape} (class indices) or {x.shape}"
            f" (probabilities) for {name} of shape {x.shape}; got {y.shape}",
            ("labels",),
        )
    cw = check_class_weights(opts.class_weights, c)
    sw = check_sample_weights(opts.sample_weights, layout.lead_shape)
    dt = compute_dtype(x.dtype, opts.precision)
    # Ignored rows are not checked: cast to inf they are unusable rows, which they may be.
    rows_ignored = None if skip is None else skip.reshape(layout.lead_shape)
    check_fits(
        x, dt, name, None if rows_ignored is None else np.expand_dims(rows_ignored, layout.axis)
    )
    for values, field in ((cw, "class_weights"), (sw, "sample_weights")):
        check_fits(values, dt, field)
    check_temperature_fits(opts.temperature, dt)
    target = y if label_kind == "probability" else None
    return _score(x, layout, dt, label_kind, idx, target, skip, (cw, sw), opts)


def _score(
    x: NDArray[Any],
    layout: Layout,
    dt: np.dtype[np.floating],
    label_kind: str,
    idx: NDArray[np.intp] | None,
    target: NDArray[Any] | None,
    skip: NDArray[np.bool_] | None,
    weights: tuple[NDArray[np.float64] | None, NDArray[np.float64] | None] | None,
    opts: LossOptions,
) -> LossResult:
    """Run the kernel over checked inputs (``weights``: class and sample weights, float64)."""
    n, c = layout.rows, layout.classes
    cw, sw = (None, None) if weights is None else weights
    # Weights scaled by a power of two (exactly) so that no product or sum of them
    # overflows or vanishes: the mean sum(w l) / sum(w) is what it is (app.core._reduce).
    used = None
    if cw is not None and idx is not None and opts.label_smoothing == 0:
        labels = idx if skip is None else idx[~skip]
        used = float(np.max(cw[labels])) if labels.size else None
    cw, cw_exp = scaled(cw, used)
    sw, sw_exp = scaled(sw)
    sw_flat = None if sw is None else sw.reshape(-1)
    outs = {k: np.empty((n, c), dt) for k in ("probs", "log_probs") if k in opts.outputs}
    arrays = per_sample_arrays(dt, n) if opts.diagnostics and opts.per_sample_diagnostics else None
    per = np.empty(n, dt)
    job = Job(
        x=x,
        layout=layout,
        dt=dt,
        kind=opts.input_kind,
        name=opts.input_kind,
        temperature=float(opts.temperature),
        index=idx,
        target=target,
        skip=skip,
        class_weights=None if cw is None else cw.astype(dt),
        smoothing=float(opts.label_smoothing),
        loss=per,
        probs=outs.get("probs"),
        log_probs=outs.get("log_probs"),
        diagnostics=opts.diagnostics,
        per_sample=arrays,
    )
    part = run(job, opts.threads)
    # Each sample's weight: its label's class weight (index labels) times its sample weight.
    weight: Floats | None = None
    if label_kind == "index" and cw is not None:
        assert idx is not None
        weight = cw[idx]
    if sw_flat is not None:
        weight = sw_flat if weight is None else weight * sw_flat
        per *= sw_flat.astype(dt)
    if skip is not None:
        weight = np.where(skip, 0.0, 1.0 if weight is None else weight)
    total = float(n) if weight is None else float(np.sum(weight, dtype=np.float64))
    loss, loss_sum = reduce(per, total, opts.reduction, label_kind, skip, sw is not None)
    # Index labels' class weights are in the total weight too; probability labels' not.
    den = (cw_exp if label_kind == "index" else 0) + sw_exp
    num = cw_exp + sw_exp
    per, loss, loss_sum, total = unscaled(per, loss, loss_sum, total, opts.reduction, num, den)
    lead = layout.lead_shape
    return LossResult(
        loss=loss,
        loss_sum=loss_sum,
        total_weight=total,
        per_sample=per.reshape(lead),
        probs=layout.unflatten(outs["probs"]) if "probs" in outs else None,
        log_probs=layout.unflatten(outs["log_probs"]) if "log_probs" in outs else None,
        diagnostics=None
        if part is None
        else diagnostics_of(part, arrays, lambda v: v.reshape(lead), True),
        label_kind=label_kind,  # type: ignore[arg-type]
        precision=precision_name(dt),
        reduction=opts.reduction,
    )
