"""Aggregates to and from their wire form: plain dicts, lists and numbers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from scorer_client.metrics.aggregate import (
    INT64_MAX,
    Aggregate,
    CalibrationSums,
    ClassCounts,
    CurveCounts,
    PerClassSums,
    TokenSums,
    TopKCounts,
)
from scorer_client.metrics.classification import LOSS_EDGES
from scorer_client.metrics.errors import InvalidAggregate

__all__ = ["FORMAT", "from_wire", "to_wire"]

FORMAT = "scorer.aggregate/1"
Loc = tuple[str | int, ...]
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_PARTS: dict[str, type[Any]] = {
    "calibration": CalibrationSums,
    "top_k": TopKCounts,
    "per_class": PerClassSums,
    "sequences": TokenSums,
}
_INT_FIELDS = {
    "classes", "count", "correct", "support", "sequences", "tokens", "k", "tp", "fp", "fn", "tn",
}  # fmt: skip
_TASKS = ("multiclass", "binary")


def to_wire(agg: Aggregate) -> dict[str, Any]:
    """The aggregate as JSON-ready values; parts that were not asked for are left out."""
    out: dict[str, Any] = {"format": FORMAT}
    for f in dataclasses.fields(agg):
        value = getattr(agg, f.name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            out[f.name] = {
                g.name: _plain(getattr(value, g.name)) for g in dataclasses.fields(value)
            }
        else:
            out[f.name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def from_wire(value: Any, loc: Loc = ("aggregate",)) -> Aggregate:
    """Check and convert a wire aggregate; errors name the field in ``loc``.

    Floats may be the strings ``"inf"``, ``"-inf"``, ``"nan"`` (JSON's rule).
    """
    if isinstance(value, Aggregate):
        return value
    obj = _mapping(value, loc)
    if obj.get("format", FORMAT) != FORMAT:
        raise InvalidAggregate(
            f"aggregate format must be {FORMAT!r}; got {obj.get('format')!r}", (*loc, "format")
        )
    known = {f.name for f in dataclasses.fields(Aggregate)} | {"format"}
    _no_extra(obj, known, loc)
    classes = _int(obj.get("classes"), (*loc, "classes"), minimum=1)
    kw: dict[str, Any] = {"classes": classes}
    task = obj.get("task", "multiclass")  # aggregates from before binary metrics lack it
    if task not in _TASKS:
        raise InvalidAggregate(
            f"task must be one of {', '.join(_TASKS)}; got {task!r}", (*loc, "task")
        )
    kw["task"] = task
    for name in ("count", "correct"):
        kw[name] = _int(obj.get(name), (*loc, name))
    for name in ("loss_sum", "total_weight", "confidence_sum"):
        kw[name] = _float(obj.get(name), (*loc, name))
    if obj.get("brier_sum") is not None:
        kw["brier_sum"] = _float(obj["brier_sum"], (*loc, "brier_sum"))
    for name, part in _PARTS.items():
        if obj.get(name) is not None:
            kw[name] = _part(part, obj[name], (*loc, name))
    if obj.get("confusion") is not None:
        kw["confusion"] = _array(
            obj["confusion"], (classes, classes), np.int64, (*loc, "confusion")
        )
    if obj.get("classification") is not None:
        kw["classification"] = _class_counts(
            obj["classification"], classes, (*loc, "classification")
        )
    if obj.get("curves") is not None:
        kw["curves"] = _curve_counts(obj["curves"], classes, (*loc, "curves"))
    if obj.get("loss_histogram") is not None:
        shape = (len(LOSS_EDGES) - 1,)
        kw["loss_histogram"] = _array(
            obj["loss_histogram"], shape, np.int64, (*loc, "loss_histogram")
        )
    agg = Aggregate(**kw)
    _check_lengths(agg, loc)
    return agg


def _part(kind: type[Any], value: Any, loc: Loc) -> Any:
    obj = _mapping(value, loc)
    names = [f.name for f in dataclasses.fields(kind)]
    _no_extra(obj, set(names), loc)
    kw: dict[str, Any] = {}
    for name in names:
        v, where = obj.get(name), (*loc, name)
        if kind in (TokenSums,):
            kw[name] = _float(v, where) if name == "nll_sum" else _int(v, where)
        elif name == "k":
            if not isinstance(v, list) or not v:
                raise InvalidAggregate("k must be a non-empty list of integers", where)
            kw[name] = tuple(_int(x, (*where, i), minimum=1) for i, x in enumerate(v))
        else:
            dtype = np.int64 if name in _INT_FIELDS else np.float64
            kw[name] = _array(v, None, dtype, where)
    return kind(**kw)


def _class_counts(value: Any, classes: int, loc: Loc) -> ClassCounts:
    obj = _mapping(value, loc)
    names = [f.name for f in dataclasses.fields(ClassCounts)]
    _no_extra(obj, set(names), loc)
    threshold = obj.get("threshold")
    if threshold is not None:
        threshold = _float(threshold, (*loc, "threshold"))
        if not 0 <= threshold <= 1:
            raise InvalidAggregate(
                f"threshold must be in [0, 1]; got {threshold}", (*loc, "threshold")
            )
    counts = [_array(obj.get(n), (classes,), np.int64, (*loc, n)) for n in names[1:]]
    return ClassCounts(threshold, *counts)


def _curve_counts(value: Any, classes: int, loc: Loc) -> CurveCounts:
    obj = _mapping(value, loc)
    _no_extra(obj, {"positives", "negatives"}, loc)
    positives = _array(obj.get("positives"), None, np.int64, (*loc, "positives"), rank=2)
    if len(positives) != classes or positives.shape[1] < 1:
        raise InvalidAggregate(
            f"positives must have one row per class ({classes}) of at least one bin",
            (*loc, "positives"),
        )
    negatives = _array(obj.get("negatives"), positives.shape, np.int64, (*loc, "negatives"))
    return CurveCounts(positives, negatives)


def _check_lengths(agg: Aggregate, loc: Loc) -> None:
    c = agg.calibration
    if c is not None and not (len(c.count) == len(c.confidence_sum) == len(c.correct) >= 1):
        raise InvalidAggregate(
            "calibration arrays must have one equal length >= 1", (*loc, "calibration")
        )
    t = agg.top_k
    if t is not None and len(t.correct) != len(t.k):
        raise InvalidAggregate(
            "top_k.correct must have one count per k", (*loc, "top_k", "correct")
        )
    p = agg.per_class
    if p is not None:
        for f in dataclasses.fields(p):
            if len(getattr(p, f.name)) != agg.classes:
                raise InvalidAggregate(
                    f"per_class.{f.name} must have {agg.classes} values (classes)",
                    (*loc, "per_class", f.name),
                )


def _mapping(value: Any, loc: Loc) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidAggregate(f"must be an object; got {type(value).__name__}", loc)
    return value


def _no_extra(obj: Mapping[str, Any], known: set[str], loc: Loc) -> None:
    extra = sorted(set(obj) - known)
    if extra:
        raise InvalidAggregate(f"unknown field {extra[0]!r}", (*loc, extra[0]))


def _int(value: Any, loc: Loc, minimum: int = 0) -> int:
    # Counts are int64 in the arrays and on every wire: a larger one is no count.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= INT64_MAX:
        raise InvalidAggregate(
            f"{loc[-1]} must be an integer in [{minimum}, 2**63 - 1]; got {value!r}", loc
        )
    return value


def _float(value: Any, loc: Loc) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAggregate(f"{loc[-1]} must be a number; got {value!r}", loc)
    try:
        return float(value)
    except OverflowError:  # an integer past float64 (JSON's 1e400 is already inf)
        raise InvalidAggregate(f"{loc[-1]} is beyond float64; got {value!r}", loc) from None


def _array(
    value: Any, shape: tuple[int, ...] | None, dtype: type[Any], loc: Loc, rank: int = 1
) -> Any:
    def leaf(v: Any, where: Loc) -> Any:
        if isinstance(v, list):
            return [leaf(x, (*where, i)) for i, x in enumerate(v)]
        return _int(v, where) if dtype is np.int64 else _float(v, where)

    if not isinstance(value, list):
        raise InvalidAggregate(f"{loc[-1]} must be a list; got {type(value).__name__}", loc)
    values = leaf(value, loc)  # raises InvalidAggregate naming the element
    try:
        arr = np.array(values, dtype=dtype)
    except ValueError as exc:
        raise InvalidAggregate(f"{loc[-1]} must be a regular array", loc) from exc
    if (shape is None and arr.ndim != rank) or (shape is not None and arr.shape != shape):
        dims = "one dimension" if rank == 1 else f"{rank} dimensions"
        want = dims if shape is None else f"shape {shape}"
        raise InvalidAggregate(f"{loc[-1]} must have {want}; got shape {arr.shape}", loc)
    return arr
