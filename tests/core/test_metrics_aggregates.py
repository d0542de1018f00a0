"""Aggregates: batches merge to the metrics of one request; the wire form round-trips."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scorer_client.metrics import InvalidAggregate

from app.core import LossOptions
from app.core.metrics import (
    FORMAT,
    MetricOptions,
    aggregate_metrics,
    evaluate_cross_entropy,
    from_wire,
    merge_aggregates,
    to_wire,
)

EVERY = MetricOptions(
    calibration_bins=15,
    brier=True,
    top_k=(1, 3),
    confusion=True,
    per_class=True,
    sequences=True,
    loss_histogram=True,
)
CUTS = [0, 1, 4, 5, 11, 19, 23, 32]  # 7 uneven batches of 32 sequences, one of size 1


def _dataset(seed: int = 5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.5, size=(32, 6, 8))
    labels = rng.integers(0, 8, size=(32, 6))
    labels[rng.random((32, 6)) < 0.2] = -1
    weights = rng.uniform(0.5, 2.0, size=(32, 6))
    return logits, labels, weights


def _close(a, b, rel: float = 1e-12) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _close(a[k], b[k], rel)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y, rel)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=rel, abs=0)
    else:
        assert a == b


def test_seven_uneven_batches_equal_one_request() -> None:
    logits, labels, weights = _dataset()
    cw = np.linspace(0.5, 1.5, 8)

    def opts(sl: slice) -> LossOptions:
        return LossOptions(ignore_index=-1, class_weights=cw, sample_weights=weights[sl])

    whole = evaluate_cross_entropy(logits, labels, opts(slice(None)), EVERY)
    parts = [
        evaluate_cross_entropy(logits[a:b], labels[a:b], opts(slice(a, b)), EVERY)
        for a, b in itertools.pairwise(CUTS)
    ]
    assert len(parts) == 7
    # Through the wire form, as a client would hold them (JSON text and back).
    wire = [json.loads(json.dumps(to_wire(p.aggregate))) for p in parts]
    _close(aggregate_metrics(merge_aggregates(wire)), whole.metrics)
    assert whole.metrics["loss"] == pytest.approx(whole.result.loss, rel=1e-15)


def test_wire_round_trip() -> None:
    logits, labels, _ = _dataset()
    agg = evaluate_cross_entropy(logits, labels, LossOptions(ignore_index=-1), EVERY).aggregate
    wire = to_wire(agg)
    assert wire["format"] == FORMAT
    back = from_wire(wire)
    assert to_wire(back) == wire
    assert from_wire(back) is back


def test_parts_not_asked_for_are_absent() -> None:
    ev = evaluate_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), LossOptions(), MetricOptions())
    assert set(to_wire(ev.aggregate)) == {
        "format",
        "task",
        "classes",
        "count",
        "correct",
        "loss_sum",
        "total_weight",
        "confidence_sum",
    }


def test_non_finite_sums_in_json_strings() -> None:
    logits = np.array([[0.0, -np.inf]])
    ev = evaluate_cross_entropy(logits, np.array([1]), LossOptions(), MetricOptions(per_class=True))
    wire = to_wire(ev.aggregate)
    assert wire["loss_sum"] == np.inf
    wire = {**wire, "loss_sum": "inf", "per_class": {**wire["per_class"], "loss_sum": [0.0, "inf"]}}
    assert aggregate_metrics(wire)["loss"] == np.inf


def _wire(**changes):
    base = to_wire(
        evaluate_cross_entropy(
            np.zeros((2, 3)),
            np.array([0, 1]),
            LossOptions(),
            MetricOptions(calibration_bins=4, top_k=(1, 2)),
        ).aggregate
    )
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("second", "loc", "message"),
    [
        pytest.param(_wire(classes=4), ("aggregates", 1, "classes"), "classes 4", id="classes"),
        pytest.param(
            _wire(calibration=None), ("aggregates", 1, "calibration"), "lacks", id="lacks"
        ),
        pytest.param(_wire(brier_sum=1.0), ("aggregates", 1, "brier_sum"), "has", id="has"),
        pytest.param(
            _wire(top_k={"k": [1, 3], "correct": [0, 0]}),
            ("aggregates", 1, "top_k", "k"),
            "k",
            id="other-k",
        ),
        pytest.param(
            _wire(calibration={"count": [0] * 5, "confidence_sum": [0.0] * 5, "correct": [0] * 5}),
            ("aggregates", 1, "calibration", "count"),
            "shape",
            id="other-bins",
        ),
        pytest.param(
            _wire(count=-1), ("aggregates", 1, "count"), r"integer in \[0, 2\*\*63", id="negative"
        ),
        pytest.param(
            _wire(count=10**30), ("aggregates", 1, "count"), "2\\*\\*63 - 1", id="past-int64"
        ),
        pytest.param(
            _wire(loss_sum=10**400), ("aggregates", 1, "loss_sum"), "beyond float64", id="huge"
        ),
        pytest.param(_wire(count=1.5), ("aggregates", 1, "count"), "integer", id="float-count"),
        pytest.param(_wire(loss_sum="x"), ("aggregates", 1, "loss_sum"), "number", id="string"),
        pytest.param(_wire(extra=1), ("aggregates", 1, "extra"), "unknown", id="unknown-field"),
        pytest.param(_wire(format="v0"), ("aggregates", 1, "format"), "format", id="format"),
        pytest.param([1], ("aggregates", 1), "object", id="not-object"),
        pytest.param(
            _wire(top_k={"k": [1, 2], "correct": [0]}),
            ("aggregates", 1, "top_k", "correct"),
            "one count per k",
            id="top-k-length",
        ),
        pytest.param(
            _wire(top_k={"k": [], "correct": []}),
            ("aggregates", 1, "top_k", "k"),
            "non-empty",
            id="top-k-empty",
        ),
        pytest.param(
            _wire(calibration={"count": [[0]], "confidence_sum": [0.0], "correct": [0]}),
            ("aggregates", 1, "calibration", "count"),
            "one dimension",
            id="nested",
        ),
        pytest.param(
            _wire(calibration={"count": 3, "confidence_sum": [0.0], "correct": [0]}),
            ("aggregates", 1, "calibration", "count"),
            "list",
            id="scalar-array",
        ),
        pytest.param(
            _wire(calibration={"count": [[0], [0, 1]], "confidence_sum": [0.0], "correct": [0]}),
            ("aggregates", 1, "calibration", "count"),
            "regular",
            id="ragged",
        ),
        pytest.param(
            _wire(calibration={"count": [], "confidence_sum": [], "correct": []}),
            ("aggregates", 1, "calibration"),
            "equal length",
            id="no-bins",
        ),
    ],
)
def test_incompatible_or_malformed_aggregates(second, loc, message) -> None:
    with pytest.raises(InvalidAggregate, match=message) as err:
        merge_aggregates([_wire(), second])
    assert err.value.loc == loc


def test_per_class_length_checked() -> None:
    wire = to_wire(
        evaluate_cross_entropy(
            np.zeros((2, 3)), np.array([0, 1]), LossOptions(), MetricOptions(per_class=True)
        ).aggregate
    )
    wire["per_class"]["support"] = [1, 1]
    with pytest.raises(InvalidAggregate) as err:
        merge_aggregates([wire])
    assert err.value.loc == ("aggregates", 0, "per_class", "support")


def test_nothing_to_merge() -> None:
    with pytest.raises(InvalidAggregate, match="at least one"):
        merge_aggregates([])


def test_merge_of_one_is_itself() -> None:
    wire = _wire()
    assert to_wire(merge_aggregates([wire])) == wire


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 39), max_size=8, unique=True).map(sorted),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_split_merges_to_the_whole(cuts: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(40, 4, 5))
    labels = rng.integers(-1, 5, size=(40, 4))
    labels[0, 0] = 0  # at least one scored token
    opts = LossOptions(ignore_index=-1, reduction="sum")
    whole = evaluate_cross_entropy(logits, labels, opts, EVERY)
    bounds = [0, *cuts, 40]
    parts = [
        evaluate_cross_entropy(logits[a:b], labels[a:b], opts, EVERY).aggregate
        for a, b in itertools.pairwise(bounds)
    ]
    _close(aggregate_metrics(merge_aggregates(parts)), whole.metrics)


def test_sums_past_int64_are_refused_not_wrapped() -> None:
    big = {**_wire(), "count": 2**62, "correct": 2**62}
    with pytest.raises(InvalidAggregate, match=r"sum of count .* passes 2\*\*63 - 1"):
        merge_aggregates([big, big])
