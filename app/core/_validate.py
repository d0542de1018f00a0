"""Validation of inputs and options: dtypes, shapes, ranges, with the offender's loc."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.core.errors import InvalidLabel, InvalidOption, InvalidShape, InvalidValue
from app.core.options import LossOptions

__all__ = [
    "at",
    "check_axis",
    "check_class_weights",
    "check_fits",
    "check_index_labels",
    "check_loss_options",
    "check_numeric",
    "check_pos_weight",
    "check_sample_weights",
    "check_temperature",
    "check_temperature_fits",
]

_KINDS = ("logits", "log_probs", "probs")


def at(index: tuple[int, ...]) -> str:
    """``[3, 7]`` for an index tuple (``[]`` for a scalar)."""
    return "[" + ", ".join(str(i) for i in index) + "]"


def _first(mask: NDArray[np.bool_]) -> tuple[tuple[int, ...], int]:
    """Index of the first True (C order) and the number of Trues."""
    flat = np.flatnonzero(mask)
    return tuple(int(i) for i in np.unravel_index(flat[0], mask.shape)), int(flat.size)


def check_numeric(a: Any, name: str) -> NDArray[Any]:
    """``a`` as an array of real numbers (bools and strings rejected), non-empty."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise InvalidValue(f"{name} must be real numbers; got dtype {arr.dtype}", (name,))
    if arr.size == 0:
        raise InvalidShape(f"{name} must not be empty; got shape {arr.shape}", (name,))
    return arr


def check_fits(values: Any, dtype: np.dtype[np.floating], name: str, ignored: Any = None) -> None:
    """Refuse finite ``values`` that the compute ``dtype`` cannot hold (cast, they become inf).

    Only float64 values meeting a float32 computation can be out of range; infinities stay
    infinities and NaN stays NaN, so neither counts. Two reductions in the common case.
    ``ignored``: a mask broadcastable to ``values`` of positions never checked (the rows
    of ignored samples: cast to inf, they are unusable rows, which ignored rows may be).
    """
    arr = np.asarray(values)
    if arr.dtype.kind != "f" or np.finfo(arr.dtype).max <= np.finfo(dtype).max or not arr.size:
        return
    big = float(np.finfo(dtype).max)
    if np.fmax.reduce(arr, axis=None) <= big and np.fmin.reduce(arr, axis=None) >= -big:
        return
    over = np.isfinite(arr) & (np.abs(arr) > big)
    if ignored is not None:
        over &= ~ignored
    if not over.any():
        return
    index, count = _first(over)
    where = f" at {at(index)} ({count} values out of range)" if arr.ndim else ""
    raise InvalidValue(
        f"{name} must be at most {big:.7g} in magnitude to compute in {dtype.name}; got"
        f" {float(arr[index]):g}{where}",
        (name, *index),
    )


def check_temperature_fits(temperature: float, dtype: np.dtype[np.floating]) -> None:
    """Refuse a temperature that ``dtype`` cannot hold as a normal number.

    Cast, a huge one becomes inf (every logit 0) and a tiny one 0 or subnormal (logits
    inf or NaN, digits lost): neither is the temperature asked for.
    """
    info = np.finfo(dtype)
    t = float(temperature)
    if not float(info.tiny) <= t <= float(info.max):
        raise InvalidValue(
            f"temperature must be in [{float(info.tiny):.7g}, {float(info.max):.7g}] to compute"
            f" in {dtype.name}; got {t:g}",
            ("temperature",),
        )


def check_axis(axis: int, ndim: int) -> int:
    """``axis`` normalised to ``[0, ndim)``."""
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer) or not -ndim <= axis < ndim:
        raise InvalidOption(
            f"axis must be an integer in [{-ndim}, {ndim}); got {axis!r}", ("axis",)
        )
    return int(axis) % ndim


def check_temperature(temperature: float, input_kind: str = "logits") -> float:
    """A finite temperature > 0, and 1 unless the predictions are logits."""
    t = float(temperature)
    if isinstance(temperature, bool) or not math.isfinite(t) or t <= 0:
        raise InvalidOption(f"temperature must be finite and > 0; got {t}", ("temperature",))
    if t != 1.0 and input_kind != "logits":
        raise InvalidOption(
            f"temperature applies to logits only; got {t} with input_kind {input_kind!r}",
            ("temperature",),
        )
    return t


def check_loss_options(opts: LossOptions) -> None:
    """Scalar options that do not depend on the data."""
    if opts.reduction not in ("none", "sum", "mean"):
        raise InvalidOption(
            f"reduction must be 'none', 'sum' or 'mean'; got {opts.reduction!r}", ("reduction",)
        )
    if opts.input_kind not in _KINDS:
        raise InvalidOption(
            f"input_kind must be one of {_KINDS}; got {opts.input_kind!r}", ("input_kind",)
        )
    if opts.precision not in (None, "float32", "float64"):
        raise InvalidOption(
            f"precision must be 'float32' or 'float64'; got {opts.precision!r}", ("precision",)
        )
    extra = set(opts.outputs) - {"per_sample", "probs", "log_probs"}
    if extra:
        raise InvalidOption(f"unknown outputs {sorted(extra)}", ("outputs",))
    e = float(opts.label_smoothing)
    if isinstance(opts.label_smoothing, bool) or not 0.0 <= e <= 1.0:  # also rejects NaN
        raise InvalidOption(f"label_smoothing must be in [0, 1]; got {e}", ("label_smoothing",))
    ii = opts.ignore_index
    if ii is not None and (isinstance(ii, bool) or not isinstance(ii, int | np.integer)):
        raise InvalidOption(f"ignore_index must be an integer; got {ii!r}", ("ignore_index",))
    t = opts.threads
    if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 1:
        raise InvalidOption(f"threads must be an integer >= 1; got {t!r}", ("threads",))
    check_temperature(opts.temperature, opts.input_kind)


def _check_weight_values(w: NDArray[Any], name: str) -> NDArray[np.float64]:
    out = w.astype(np.float64)
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        index, n = _first(bad)
        raise InvalidValue(
            f"{name} must be finite and >= 0; got {w[index]} at {at(index)} ({n} invalid)",
            (name, *index),
        )
    return out


def check_class_weights(w: Any, classes: int) -> NDArray[np.float64] | None:
    """Class weights: 1-D, one per class, finite and >= 0."""
    if w is None:
        return None
    arr = check_numeric(w, "class_weights")
    if arr.shape != (classes,):
        raise InvalidShape(
            f"class_weights must have shape ({classes},); got {arr.shape}", ("class_weights",)
        )
    return _check_weight_values(arr, "class_weights")


def check_pos_weight(p: Any, classes: int) -> NDArray[np.float64] | None:
    """Positive-class weight: a scalar or one per class, finite and >= 0."""
    if p is None:
        return None
    arr = check_numeric(p, "pos_weight")
    if arr.shape not in ((), (classes,)):
        raise InvalidShape(
            f"pos_weight must be a scalar or have shape ({classes},); got {arr.shape}",
            ("pos_weight",),
        )
    return _check_weight_values(arr, "pos_weight")


def check_sample_weights(w: Any, shape: tuple[int, ...]) -> NDArray[np.float64] | None:
    """Sample weights broadcastable to the per-sample ``shape``, finite and >= 0."""
    if w is None:
        return None
    arr = check_numeric(w, "sample_weights")
    try:
        np.broadcast_shapes(arr.shape, shape)
        ok = arr.ndim <= len(shape) and np.broadcast_shapes(arr.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise InvalidShape(
            f"sample_weights must be broadcastable to {shape}; got {arr.shape}",
            ("sample_weights",),
        )
    return np.broadcast_to(_check_weight_values(arr, "sample_weights"), shape)


def check_index_labels(
    labels: NDArray[Any], classes: int, ignore_index: int | None
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Flat class indices (ignored positions set to 0) and the flat ignored mask."""
    if labels.dtype.kind not in "iu":
        raise InvalidLabel(
            f"class-index labels must be integers; got dtype {labels.dtype}", ("labels",)
        )
    flat = labels.reshape(-1)
    ignored = flat == ignore_index if ignore_index is not None else np.zeros(flat.shape, bool)
    bad = ((flat < 0) | (flat >= classes)) & ~ignored
    if bad.any():
        index, n = _first(bad.reshape(labels.shape))
        raise InvalidLabel(
            f"labels must be integers in [0, {classes}); got {labels[index]} at index"
            f" {at(index)} ({n} invalid labels)",
            ("labels", *index),
        )
    return np.where(ignored, 0, flat).astype(np.intp), ignored
