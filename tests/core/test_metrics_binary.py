"""Binary and multi-label metrics, and one-vs-rest classification, against scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from app.core import InvalidOption, InvalidValue, LossOptions
from app.core.metrics import (
    InvalidAggregate,
    MetricOptions,
    aggregate_metrics,
    evaluate_binary_cross_entropy,
    evaluate_cross_entropy,
    from_wire,
    merge_aggregates,
    to_wire,
)

PROBS = LossOptions(outputs=frozenset({"per_sample", "probs"}))
EVERY = MetricOptions(
    classification=True, curve_bins=200, calibration_bins=10, brier=True, loss_histogram=True
)


def _binary(n: int = 600, c: int | None = None, seed: int = 3) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    shape = (n,) if c is None else (n, c)
    y = rng.integers(0, 2, size=shape).astype(np.float64)
    x = rng.normal(scale=2.0, size=shape) + 1.5 * (y - 0.5)  # informative, not perfect
    return x, y


def _sklearn_prf(y: Any, pred: Any, **kw: Any) -> dict[str, Any]:
    def prf(average: str | None) -> tuple[Any, ...]:
        return precision_recall_fscore_support(y, pred, average=average, zero_division=0, **kw)

    p, r, f, s = prf(None)
    out: dict[str, Any] = {"precision": p, "recall": r, "f1": f, "support": s}
    for average in ("macro", "micro", "weighted"):
        a = prf(average)
        out[average] = {"precision": a[0], "recall": a[1], "f1": a[2]}
    return out


def _assert_prf(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for key in ("precision", "recall", "f1"):
        assert ours[key] == pytest.approx(list(theirs[key]), rel=1e-12, abs=1e-15)
    assert ours["support"] == list(theirs["support"])
    for average in ("macro", "micro", "weighted"):
        for key in ("precision", "recall", "f1"):
            assert ours[average][key] == pytest.approx(theirs[average][key], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.9])
def test_binary_classification_matches_sklearn(threshold: float) -> None:
    x, y = _binary()
    ev = evaluate_binary_cross_entropy(
        x, y, PROBS, MetricOptions(classification=True, threshold=threshold)
    )
    p = ev.result.probs
    assert p is not None
    found = ev.metrics["classification"]
    assert found["threshold"] == threshold
    _assert_prf(found, _sklearn_prf(y, (p > threshold).astype(int), labels=[1]))


def test_multilabel_classification_matches_sklearn() -> None:
    x, y = _binary(c=5)
    y[:, 4] = 0  # a class with no support: zero_division 0 everywhere it divides by 0
    ev = evaluate_binary_cross_entropy(x, y, PROBS, MetricOptions(classification=True))
    p = ev.result.probs
    assert p is not None
    _assert_prf(ev.metrics["classification"], _sklearn_prf(y.astype(int), (p > 0.5).astype(int)))


def test_one_vs_rest_on_the_argmax_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    logits, labels = rng.normal(size=(500, 6)), rng.integers(0, 5, size=500)  # class 5 unseen
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(classification=True))
    found = ev.metrics["classification"]
    assert found["threshold"] is None
    pred = np.argmax(logits, axis=1)
    _assert_prf(found, _sklearn_prf(labels, pred, labels=list(range(6))))
    assert found["micro"]["f1"] == pytest.approx(ev.metrics["accuracy"], rel=1e-12)


def _check_curves(curves: dict[str, Any], p: Any, y: Any) -> None:
    for c in range(p.shape[1]):
        exact_auc = roc_auc_score(y[:, c], p[:, c])
        exact_ap = average_precision_score(y[:, c], p[:, c])
        assert abs(curves["roc_auc"][c] - exact_auc) <= curves["roc_auc_bound"][c] + 1e-12
        assert (
            abs(curves["average_precision"][c] - exact_ap)
            <= curves["average_precision_bound"][c] + 1e-12
        )


@pytest.mark.parametrize("bins", [1, 10, 1000])
def test_curve_areas_are_within_their_bounds_of_sklearn(bins: int) -> None:
    x, y = _binary(c=3)
    ev = evaluate_binary_cross_entropy(x, y, PROBS, MetricOptions(curve_bins=bins))
    p = ev.result.probs
    assert p is not None
    curves = ev.metrics["curves"]
    _check_curves(curves, p, y)
    if bins == 1000:  # 600 scores: most bins hold one, and the bound is small
        assert max(curves["roc_auc_bound"]) < 2e-3
        assert max(curves["average_precision_bound"]) < 2e-2
    macro = np.mean([roc_auc_score(y[:, c], p[:, c]) for c in range(3)])
    assert curves["macro_roc_auc"] == pytest.approx(macro, abs=max(curves["roc_auc_bound"]))


def test_roc_points_are_exact_at_the_bin_edges() -> None:
    x, y = _binary()
    ev = evaluate_binary_cross_entropy(x, y, PROBS, MetricOptions(curve_bins=50))
    p = ev.result.probs
    assert p is not None
    roc = ev.metrics["curves"]["roc"][0]
    assert roc["thresholds"][0] == np.inf
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    for t, fpr, tpr in zip(roc["thresholds"][1:], roc["fpr"][1:], roc["tpr"][1:], strict=True):
        assert tpr == np.mean(p[y == 1] >= t)
        assert fpr == np.mean(p[y == 0] >= t)
    assert roc["thresholds"] == sorted(roc["thresholds"], reverse=True)
    # With a bin per distinct score the binned curve is sklearn's, point for point.
    coarse = (np.floor(p * 100) + 0.5) / 100  # every score mid-bin
    ev = evaluate_binary_cross_entropy(
        np.log(coarse / (1 - coarse)), y, PROBS, MetricOptions(curve_bins=100)
    )
    assert ev.result.probs is not None
    fpr, tpr, _ = roc_curve(y, ev.result.probs, drop_intermediate=False)
    fine = ev.metrics["curves"]["roc"][0]
    assert fine["fpr"] == pytest.approx(list(fpr), abs=1e-15)
    assert fine["tpr"] == pytest.approx(list(tpr), abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(
        st.one_of(
            st.sampled_from([0.0, 1.0, 0.5, 0.1, 0.9, 1e-300, 1 - 2**-53]),
            st.floats(0, 1),
        ),
        min_size=2,
        max_size=80,
    ),
    data=st.data(),
    bins=st.sampled_from([1, 2, 3, 10, 100]),
)
def test_the_bounds_hold_for_ties_and_extreme_scores(
    scores: list[float], data: st.DataObject, bins: int
) -> None:
    p = np.array(scores).reshape(-1, 1)
    truth = np.array(data.draw(st.lists(st.booleans(), min_size=len(p), max_size=len(p))))
    if truth.all() or not truth.any():
        truth[0] = not truth[0]
    from scorer_client.metrics.curves import curve_counts, curves_of

    curves = curves_of(*curve_counts(p, truth.reshape(-1, 1), bins))
    _check_curves(curves, p, truth.reshape(-1, 1).astype(int))


def test_binary_calibration_and_brier() -> None:
    x, y = _binary(c=2)
    ev = evaluate_binary_cross_entropy(x, y, PROBS, MetricOptions(calibration_bins=10, brier=True))
    p = ev.result.probs
    assert p is not None
    assert ev.metrics["brier"] == pytest.approx(brier_score_loss(y.ravel(), p.ravel()), rel=1e-12)
    b = np.clip(np.floor(p.ravel() * 10).astype(int), 0, 9)
    gap = sum(abs(np.sum(y.ravel()[b == i]) - np.sum(p.ravel()[b == i])) for i in range(10))
    assert ev.metrics["calibration"]["ece"] == pytest.approx(gap / p.size, rel=1e-9)
    bins = ev.metrics["calibration"]["reliability"]
    assert sum(r["count"] for r in bins) == p.size


def test_batches_merge_to_the_whole() -> None:
    x, y = _binary(n=900, c=3)
    whole = evaluate_binary_cross_entropy(x, y, PROBS, EVERY)
    parts = [
        to_wire(evaluate_binary_cross_entropy(x[s], y[s], PROBS, EVERY).aggregate)
        for s in (slice(0, 100), slice(100, 555), slice(555, 900))
    ]
    merged = aggregate_metrics(merge_aggregates(parts))
    expected = whole.metrics
    assert merged["classification"] == expected["classification"]
    assert merged["curves"] == expected["curves"]
    ours, theirs = merged["calibration"], expected["calibration"]  # float sums: any order
    for key in ("ece", "mce", "rms"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-12)
    assert [r["count"] for r in ours["reliability"]] == [r["count"] for r in theirs["reliability"]]
    assert merged["count"] == expected["count"] == 2700
    assert merged["task"] == "binary"
    assert merged["brier"] == pytest.approx(expected["brier"], rel=1e-12)
    assert merged["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    wire = to_wire(whole.aggregate)
    assert to_wire(from_wire(wire)) == wire


def test_ignored_elements_are_left_out_of_every_metric() -> None:
    x, y = _binary(c=2)
    y_ignored = y.copy()
    y_ignored[::7, 1] = -100
    keep = y_ignored[:, 1] != -100
    opts = LossOptions(ignore_index=-100)
    ev = evaluate_binary_cross_entropy(x, y_ignored, opts, EVERY)
    counts = ev.aggregate.classification
    assert counts is not None
    alone = evaluate_binary_cross_entropy(x[keep][:, 1], y[keep][:, 1], LossOptions(), EVERY)
    only = alone.aggregate.classification
    assert only is not None
    ours = [counts.tp[1], counts.fp[1], counts.fn[1], counts.tn[1]]
    assert_array_equal(ours, [only.tp[0], only.fp[0], only.fn[0], only.tn[0]])
    assert ev.aggregate.count == y.size - np.count_nonzero(~keep)


def test_the_class_axis_may_be_any() -> None:
    x, y = _binary(c=3)
    last = evaluate_binary_cross_entropy(x, y, PROBS, EVERY).metrics
    first = evaluate_binary_cross_entropy(
        x.T.copy(), y.T.copy(), LossOptions(axis=0, outputs=PROBS.outputs), EVERY
    ).metrics
    assert first["classification"] == last["classification"]
    assert first["curves"] == last["curves"]


def test_soft_labels_are_refused_where_a_metric_needs_0_or_1() -> None:
    x, y = _binary(c=2)
    y[4, 1] = 0.3
    with pytest.raises(InvalidValue, match=r"labels must be 0 or 1 .* at \[4, 1\]") as info:
        evaluate_binary_cross_entropy(x, y, LossOptions(), MetricOptions(classification=True))
    assert info.value.loc == ("labels", 4, 1)
    # The loss and its aggregate take soft labels.
    ev = evaluate_binary_cross_entropy(x, y, LossOptions(), MetricOptions(loss_histogram=True))
    assert ev.metrics["count"] == y.size


@pytest.mark.parametrize(
    ("options", "loc"),
    [
        (MetricOptions(top_k=(1,)), ("metrics", "top_k")),
        (MetricOptions(confusion=True), ("metrics", "confusion")),
        (MetricOptions(per_class=True), ("metrics", "per_class")),
        (MetricOptions(sequences=True), ("metrics", "sequences")),
        (MetricOptions(threshold=1.5), ("metrics", "threshold")),
        (MetricOptions(curve_bins=0), ("metrics", "curve_bins")),
        (MetricOptions(curve_bins=100_000), ("metrics", "curve_bins")),  # 11 x 1e5 cells
    ],
)
def test_options_without_meaning_are_refused(options: MetricOptions, loc: tuple[str, ...]) -> None:
    x, y = _binary(n=10, c=11)
    with pytest.raises(InvalidOption) as info:
        evaluate_binary_cross_entropy(x, y, LossOptions(), options)
    assert info.value.loc == loc


def test_aggregates_of_different_thresholds_or_tasks_do_not_merge() -> None:
    x, y = _binary(n=20)
    a = evaluate_binary_cross_entropy(x, y, LossOptions(), MetricOptions(classification=True))
    b = evaluate_binary_cross_entropy(
        x, y, LossOptions(), MetricOptions(classification=True, threshold=0.7)
    )
    with pytest.raises(InvalidAggregate, match=r"threshold 0\.7, aggregate 0 has 0\.5"):
        merge_aggregates([a.aggregate, b.aggregate])
    one_class = np.zeros(len(x), int)  # one class each: only the task tells them apart
    multiclass = evaluate_cross_entropy(x[:, None], one_class, LossOptions(), MetricOptions())
    plain = evaluate_binary_cross_entropy(x, y, LossOptions(), MetricOptions())
    with pytest.raises(InvalidAggregate, match="task"):
        merge_aggregates([multiclass.aggregate, plain.aggregate])


def test_given_probabilities_are_decided_and_binned_as_given() -> None:
    probs = np.array([0.0, 0.0, 1.0, 0.3])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    opts = LossOptions(input_kind="probs")
    ev = evaluate_binary_cross_entropy(
        probs, y, opts, MetricOptions(classification=True, threshold=0.0, curve_bins=10)
    )
    expected = precision_recall_fscore_support(y, probs > 0.0, labels=[1], zero_division=0)
    assert ev.metrics["classification"]["precision"] == list(expected[0])  # 1.0, not 0.5
    assert ev.metrics["curves"]["roc_auc"] == [roc_auc_score(y, probs)]
