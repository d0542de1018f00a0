"""Which requests need no checks beyond the kernel's own: decided from types and options.

Validating a request costs a few dozen NumPy calls whatever its size, which for a
``[64, 10]`` batch is most of the time spent (bench/README.md, design decisions). A
request whose types, shapes and options alone prove those checks redundant --
float32/float64 logits in their own precision with the class axis last, integer
class-index labels of the per-sample shape, no weights, an ``ignore_index`` no label in
range can equal -- goes straight to the kernel (:mod:`app.core._rows`), which checks the
values as part of its arithmetic, once its labels are known to be in range (one argmax
of the labels read as unsigned).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.core.options import LossOptions

__all__ = ["admit"]

Float = np.dtype[np.floating]
_F32: Float = np.dtype(np.float32)
_F64: Float = np.dtype(np.float64)
# Compute dtype by input dtype and precision option; other pairs are checked in full.
_COMPUTE: dict[tuple[np.dtype[Any], str | None], Float] = {
    (_F32, None): _F32,
    (_F32, "float32"): _F32,
    (_F64, None): _F64,
    (_F64, "float64"): _F64,
}
# Labels read as unsigned integers of their size: a negative label becomes huge.
_UNSIGNED = {
    np.dtype(f"{kind}{bits}"): np.dtype(f"uint{bits}")
    for kind in ("int", "uint")
    for bits in (8, 16, 32, 64)
}


_OUTPUTS = frozenset({"per_sample", "probs", "log_probs"})
_REDUCTIONS = ("none", "sum", "mean")
_PLAIN = (float, int)


def admit(x: Any, y: Any, opts: LossOptions) -> tuple[Float, np.dtype[Any]] | None:
    """The compute dtype and the labels' unsigned view dtype when the request needs no
    checks beyond its labels' range; else None.

    Admitted: ``x`` a float32/float64 ndarray of rank 2 or more, 1+ classes on its last
    axis, computed in its own precision; ``y`` an integer ndarray of ``x``'s shape without
    the class axis; logits; options at their defaults but for ``reduction``, ``outputs``,
    ``diagnostics``, ``per_sample_diagnostics``, ``precision``, ``threads`` and an
    ``ignore_index`` that no label in range can equal. Checked by type, not by value
    conversion: anything else is left to the full checks, which say what is wrong.
    """
    if type(x) is not np.ndarray or type(y) is not np.ndarray:
        return None
    shape = x.shape
    unsigned = _UNSIGNED.get(y.dtype)
    if len(shape) < 2 or y.shape != shape[:-1] or not x.size or unsigned is None:
        return None
    dt = _COMPUTE.get((x.dtype, opts.precision))
    c, ii, axis = shape[-1], opts.ignore_index, opts.axis
    if (
        dt is None
        or opts.input_kind != "logits"
        or opts.reduction not in _REDUCTIONS
        or type(opts.outputs) is not frozenset
        or not opts.outputs <= _OUTPUTS
        or type(opts.diagnostics) is not bool
        or type(opts.per_sample_diagnostics) is not bool
        or type(opts.threads) is not int
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
