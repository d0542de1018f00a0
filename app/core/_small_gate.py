"""Which requests the small-batch path takes: types, shapes and options, before any data.

:func:`app.core._small.small_batch` scores the common request (logits with class-index
labels, no weights, smoothing, temperature or per-sample diagnostics) in one block.
:func:`admit` says whether a request is of that kind from its arrays' types and shapes
and its options alone; the data checks (label range, ``max |x| <= B``) are folded into
the work and stay there.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.core._dtypes import exp_limits
from app.core.options import LossOptions

__all__ = ["BOUND", "F64", "PRECISION", "SMALL_ELEMENTS", "Float", "admit"]

# Up to this many logits the whole batch is one block, with at most two [n, c]
# temporaries (512 KiB in float64): faster than the blocked path at every shape tried.
SMALL_ELEMENTS = 1 << 15

Float = np.dtype[np.floating]
F32: Float = np.dtype(np.float32)
F64: Float = np.dtype(np.float64)
# Compute dtype by input dtype and precision option; other pairs take the general path.
_COMPUTE: dict[tuple[np.dtype[Any], str | None], Float] = {
    (F32, None): F32,
    (F32, "float32"): F32,
    (F64, None): F64,
    (F64, "float64"): F64,
}
PRECISION = {F32: "float32", F64: "float64"}
# Labels read as unsigned integers of their size: a negative label becomes huge.
_UNSIGNED = {
    np.dtype(f"{kind}{bits}"): np.dtype(f"uint{bits}")
    for kind in ("int", "uint")
    for bits in (8, 16, 32, 64)
}
_OUTPUTS = frozenset({"per_sample", "probs"})
_REDUCTIONS = ("none", "sum", "mean")
_PLAIN = (float, int)


def _bound(dt: Float) -> float:
    # c exp(2B) < exp(over): rest / e_y, the row sums and the products e x stay finite;
    # exp(-2B) / c > exp(under): no exponential, rest or probability is subnormal or 0.
    over, under = exp_limits(dt)
    b = (over - math.log(SMALL_ELEMENTS) - 2) / 2
    assert -2 * b - math.log(SMALL_ELEMENTS) > under
    return b


# The largest |x| the small path takes, by compute dtype (``B`` in small_batch's module).
BOUND = {F32: _bound(F32), F64: _bound(F64)}


def admit(x: Any, y: Any, opts: LossOptions) -> tuple[Float, np.dtype[Any]] | None:
    """The compute dtype and the labels' unsigned view dtype, or None: not for this path.

    Admitted: ``x`` a float32/float64 ndarray of at most ``SMALL_ELEMENTS`` elements,
    C-contiguous with 2+ classes on the last axis, in its own compute precision; ``y``
    an integer ndarray of the per-sample shape; options at their defaults but for
    ``reduction``, ``outputs`` (``per_sample``, ``probs``), ``diagnostics``,
    ``precision`` and an ``ignore_index`` that no label in range can equal.
    """
    if type(x) is not np.ndarray or type(y) is not np.ndarray:
        return None
    size, shape = x.size, x.shape
    if not 0 < size <= SMALL_ELEMENTS or len(shape) < 2 or y.shape != shape[:-1]:
        return None
    dt = _COMPUTE.get((x.dtype, opts.precision))
    unsigned = _UNSIGNED.get(y.dtype)
    c = shape[-1]
    ii, axis = opts.ignore_index, opts.axis
    if (
        dt is None
        or unsigned is None
        or c < 2
        or not x.flags.c_contiguous
        or opts.input_kind != "logits"
        or opts.reduction not in _REDUCTIONS
        or type(opts.outputs) is not frozenset
        or not opts.outputs <= _OUTPUTS
        or opts.per_sample_diagnostics
        or type(opts.threads) is not int  # one block, any count: the general path checks it
        or opts.threads < 1
        or opts.class_weights is not None
        or opts.sample_weights is not None
        or opts.pos_weight is not None
        or type(opts.label_smoothing) not in _PLAIN
        or opts.label_smoothing != 0
        or type(opts.temperature) not in _PLAIN
        or opts.temperature != 1
        or type(axis) is not int
        or (axis != -1 and axis != len(shape) - 1)
        or (ii is not None and (type(ii) is not int or 0 <= ii < c))
    ):
        return None
    return dt, unsigned
