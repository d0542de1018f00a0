"""Softmax cross-entropy with class-index or probability labels (PyTorch semantics)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core._dtypes import compute_dtype, precision_name
from app.core._fast import index_rows
from app.core._inputs import check_block, log_domain, unusable_rows
from app.core._layout import Layout
from app.core._reduce import reduce
from app.core._small import small_batch
from app.core._validate import (
    check_axis,
    check_class_weights,
    check_fits,
    check_index_labels,
    check_loss_options,
    check_numeric,
    check_sample_weights,
)
from app.core.diagnostics import DiagnosticsAccumulator
from app.core.errors import InvalidOption, InvalidShape, InvalidValue
from app.core.options import LossOptions
from app.core.results import LossResult
from app.core.softmax import shifted_rows

__all__ = ["score_cross_entropy"]


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
    # Per-call overhead dominates small batches: the common kind takes one block in
    # ~20 NumPy calls (app.core._small); anything it declines takes the general path.
    small = small_batch(predictions, labels, opts)
    if small is not None:
        return small
    return _score_general(predictions, labels, opts)


def _score_general(predictions: Any, labels: Any, opts: LossOptions) -> LossResult:
    """:func:`score_cross_entropy` for any input: the blocked fast and stable paths."""
    check_loss_options(opts)
    kind, name = opts.input_kind, opts.input_kind
    if opts.pos_weight is not None:
        raise InvalidOption("pos_weight applies to binary cross-entropy only", ("pos_weight",))
    x = check_numeric(predictions, name)
    if x.ndim == 0:
        raise InvalidShape(f"{name} must have a class axis; got a scalar", (name,))
    layout = Layout(x.shape, check_axis(opts.axis, x.ndim))
    y = np.asarray(labels)
    c = layout.classes
    skip: NDArray[np.bool_] | None = None
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
    for values, field in ((x, name), (cw, "class_weights"), (sw, "sample_weights")):
        check_fits(values, dt, field)
    check_fits(opts.temperature, dt, "temperature")
    e = float(opts.label_smoothing)
    w = None if cw is None else cw.astype(dt)
    sw_flat = None if sw is None else sw.reshape(-1)

    n = layout.rows
    per = np.zeros(n, dt)
    outs = {k: np.empty((n, c), dt) for k in ("probs", "log_probs") if k in opts.outputs}
    acc = DiagnosticsAccumulator(dt, n, opts.per_sample_diagnostics) if opts.diagnostics else None
    total = 0.0
    label_blocks = layout.blocks(y) if label_kind == "probability" else None

    def score_rows(rows: slice | NDArray[np.intp], block: NDArray[Any]) -> float:
        """Score the rows ``rows`` (``block`` their logits); returns their total weight."""
        bskip = None if skip is None else skip[rows]
        if label_blocks is not None:
            yb = next(label_blocks)[1]
            check_block(layout, y, yb, rows, None, "probs", "labels", InvalidValue)
        check_block(layout, x, block, rows, skip, kind, name)
        junk = None if bskip is None else bskip & unusable_rows(block)
        xl = log_domain(block, kind, dt, opts.temperature, junk)
        if acc is not None:
            acc.numerical(xl, np.ones(len(xl), bool) if bskip is None else ~bskip)
        if kind == "logits":
            z, s = shifted_rows(xl)
        else:
            z, s = xl, np.zeros(len(xl), dt)
        if label_blocks is None:
            yi = idx[rows]
            # Only the label's logit is needed: -log p_y = s - z_y (optax's trick).
            lb = s - z[np.arange(len(yi)), yi]
            if w is not None:
                lb = lb * w[yi]
            if e > 0:
                lb = (1 - e) * lb + (e / c) * _weighted_sum(_nll(z, s), w)
            weight = np.ones(len(yi)) if cw is None else cw[yi]
            truth: NDArray[Any] = yi
        else:
            yf = yb.astype(dt)
            if e > 0:
                yf = yf * dt.type(1 - e) + dt.type(e / c)
            lb = _weighted_sum(_nll(z, s), yf if w is None else yf * w)
            weight = np.ones(len(yf))
            truth = yb.astype(dt)
        if sw_flat is not None:
            lb = lb * sw_flat[rows].astype(dt)
            weight = weight * sw_flat[rows]
        if bskip is not None:
            lb[bskip] = 0
            weight[bskip] = 0
        per[rows] = lb
        if outs or acc is not None:
            with np.errstate(invalid="ignore"):
                lp = z - s[:, None]
            p = np.exp(lp)
            if junk is not None:
                lp[junk] = np.nan
                p[junk] = np.nan
            if "log_probs" in outs:
                outs["log_probs"][rows] = lp
            if "probs" in outs:
                outs["probs"][rows] = p
            if acc is not None:
                scored = np.ones(len(lp), bool) if bskip is None else ~bskip
                acc.rows(rows, z, lp, p, scored, truth)
        return float(np.sum(weight, dtype=np.float64))

    flat = None
    if (
        kind == "logits"
        and label_kind == "index"
        and e == 0
        and not opts.per_sample_diagnostics
        and "log_probs" not in outs
    ):
        flat = layout.flat(x)
    if flat is None:
        for rows, block in layout.blocks(x):
            total += score_rows(rows, block)
    else:
        fast = index_rows(
            flat, idx, skip, dt, opts.temperature, outs.get("probs"), acc is not None, opts.threads
        )
        # Rows the fast path could not take (ignored, non-finite, extreme): stable path.
        stable = fast.stable
        redo = np.flatnonzero(stable) if stable.any() else None
        lb = fast.loss if w is None else fast.loss * w[idx]
        if sw_flat is not None:
            lb = lb * sw_flat.astype(dt)
        if redo is None:
            per = lb
        else:
            np.copyto(per, lb, where=~stable)
        # Weight of a fast row: its label's class weight times its sample weight.
        if cw is None and sw_flat is None:
            total = float(n if redo is None else n - redo.size)
        else:
            weight = np.ones(n) if cw is None else cw[idx]
            if sw_flat is not None:
                weight = weight * sw_flat
            total = float(np.sum(weight, where=~stable, dtype=np.float64))
        if acc is not None:
            acc.merge_fast(fast.diagnostics)
        if redo is not None:
            step = layout.block_rows()
            for r0 in range(0, redo.size, step):
                some = redo[r0 : r0 + step]
                total += score_rows(some, flat[some])
    per_shaped = per.reshape(layout.lead_shape)
    loss, loss_sum = reduce(per, total, opts.reduction, label_kind, skip, sw is not None)
    return LossResult(
        loss=loss,
        loss_sum=loss_sum,
        total_weight=total,
        per_sample=per_shaped,
        probs=layout.unflatten(outs["probs"]) if "probs" in outs else None,
        log_probs=layout.unflatten(outs["log_probs"]) if "log_probs" in outs else None,
        diagnostics=None
        if acc is None
        else acc.result(lambda a: a.reshape(layout.lead_shape), has_truth=True),
        label_kind=label_kind,  # type: ignore[arg-type]
        precision=precision_name(dt),
        reduction=opts.reduction,
    )


def _nll(z: NDArray[np.floating], s: NDArray[np.floating]) -> NDArray[np.floating]:
    """``-log p_c = s - z_c``: >= 0 for logits, +inf where ``z_c = -inf``."""
    out: NDArray[np.floating] = s[:, None] - z
    return out


def _weighted_sum(nll: NDArray[np.floating], coef: NDArray[np.floating] | None) -> Any:
    """``sum_c coef_c nll_c`` per row, a zero coefficient giving exactly 0 (0 * inf = 0)."""
    if coef is None:
        return np.sum(nll, axis=1)
    terms = np.zeros_like(nll)
    np.multiply(np.broadcast_to(coef, nll.shape), nll, out=terms, where=coef != 0)
    return np.sum(terms, axis=1)
