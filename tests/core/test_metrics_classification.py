"""Brier, top-k, confusion, per-class and the loss histogram against sklearn and float64."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scorer_client.metrics.classification import LOSS_EDGES, loss_histogram
from sklearn.metrics import brier_score_loss, confusion_matrix, log_loss, top_k_accuracy_score

from app.core import InvalidOption, LossOptions
from app.core.metrics import MetricOptions, evaluate_cross_entropy


def _data(n: int = 400, c: int = 7, seed: int = 1):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, c))
    labels = rng.integers(0, c, size=n)
    p = np.exp(logits - logits.max(1, keepdims=True))
    return logits, labels, p / p.sum(1, keepdims=True)


def test_loss_matches_sklearn_log_loss() -> None:
    logits, labels, p = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions())
    assert ev.metrics["loss"] == pytest.approx(log_loss(labels, p, labels=range(7)), rel=1e-12)


def test_brier_matches_sklearn_multiclass() -> None:
    logits, labels, p = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(brier=True))
    expected = brier_score_loss(labels, p, labels=list(range(7)))
    direct = np.mean(np.sum((p - np.eye(7)[labels]) ** 2, axis=1))
    assert ev.metrics["brier"] == pytest.approx(expected, rel=1e-12)
    assert ev.metrics["brier"] == pytest.approx(direct, rel=1e-12)


def test_brier_with_probability_labels() -> None:
    logits, labels, p = _data(n=50, c=3)
    y = np.full((50, 3), 0.1)
    y[np.arange(50), labels] = 0.8
    ev = evaluate_cross_entropy(logits, y, LossOptions(), MetricOptions(brier=True))
    assert ev.metrics["brier"] == pytest.approx(np.mean(np.sum((p - y) ** 2, axis=1)), rel=1e-12)


@pytest.mark.parametrize("k", [pytest.param(k, id=f"k-{k}") for k in (1, 2, 3, 5, 6)])
def test_top_k_matches_sklearn(k: int) -> None:
    logits, labels, p = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(top_k=(k,)))
    expected = top_k_accuracy_score(labels, p, k=k, labels=range(7))
    assert ev.metrics["top_k"] == [{"k": k, "accuracy": pytest.approx(expected, rel=1e-12)}]


def test_k_of_at_least_the_classes_is_always_right() -> None:
    logits, labels, _ = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(top_k=(7, 100)))
    assert [t["accuracy"] for t in ev.metrics["top_k"]] == [1.0, 1.0]


def test_top_1_is_the_accuracy() -> None:
    logits, labels, _ = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(top_k=(1,)))
    assert ev.metrics["top_k"][0]["accuracy"] == ev.metrics["accuracy"]
    assert ev.metrics["accuracy"] == ev.result.diagnostics.accuracy


def test_confusion_matches_sklearn() -> None:
    logits, labels, p = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(confusion=True))
    assert_array_equal(
        ev.metrics["confusion"], confusion_matrix(labels, p.argmax(1), labels=range(7))
    )


def test_confusion_refused_above_the_limit() -> None:
    logits, labels, _ = _data()
    with pytest.raises(InvalidOption, match="at most confusion_max_classes") as err:
        evaluate_cross_entropy(
            logits, labels, LossOptions(), MetricOptions(confusion=True, confusion_max_classes=6)
        )
    assert err.value.loc == ("metrics", "confusion")


def test_per_class_against_direct_formulas() -> None:
    logits, labels, p = _data(c=4)
    cw = np.array([1.0, 2.0, 0.5, 1.0])
    opts = LossOptions(class_weights=cw)
    ev = evaluate_cross_entropy(logits, labels, opts, MetricOptions(per_class=True))
    pc = ev.metrics["per_class"]
    nll = -np.log(p[np.arange(len(labels)), labels])
    for c in range(4):
        mine = labels == c
        assert pc["support"][c] == mine.sum()
        assert pc["accuracy"][c] == pytest.approx(np.mean(p[mine].argmax(1) == c), rel=1e-15)
        # Within a class the class weight cancels: its mean is the plain mean NLL.
        assert pc["mean_loss"][c] == pytest.approx(nll[mine].mean(), rel=1e-12)
    assert sum(
        m * w for m, w in zip(pc["mean_loss"], np.bincount(labels, cw[labels]), strict=True)
    ) == pytest.approx(ev.result.loss_sum, rel=1e-12)


def test_per_class_without_support_is_none() -> None:
    ev = evaluate_cross_entropy(
        np.zeros((2, 3)), np.array([0, 0]), LossOptions(), MetricOptions(per_class=True)
    )
    assert ev.metrics["per_class"]["accuracy"][1:] == [None, None]
    assert ev.metrics["per_class"]["mean_loss"][2] is None


def test_ignored_samples_count_for_nothing() -> None:
    logits, labels, _ = _data(n=60)
    masked = labels.copy()
    masked[::3] = -100
    bad = logits.copy()
    bad[::3] = np.nan
    every = MetricOptions(
        calibration_bins=10, brier=True, top_k=(1, 3), confusion=True, per_class=True
    )
    ev = evaluate_cross_entropy(bad, masked, LossOptions(ignore_index=-100), every)
    keep = masked != -100
    ref = evaluate_cross_entropy(logits[keep], labels[keep], LossOptions(), every)
    assert _close(ev.metrics, ref.metrics)


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-12)
    assert a == b
    return True


def test_loss_histogram_bins() -> None:
    assert len(LOSS_EDGES) == 27
    assert LOSS_EDGES[0] == 0.0
    assert np.isinf(LOSS_EDGES[-1])
    h = loss_histogram(np.array([0.0, 1e-5, 1e-4, 0.5, 99.0, 100.0, 1e6, np.inf]))
    assert h.sum() == 8
    assert h[0] == 2
    assert h[1] == 1
    assert h[-1] == 3


def test_top_k_options_checked() -> None:
    with pytest.raises(InvalidOption) as err:
        evaluate_cross_entropy(
            np.zeros((1, 2)), np.array([0]), LossOptions(), MetricOptions(top_k=(1, 0))
        )
    assert err.value.loc == ("metrics", "top_k", 1)
    with pytest.raises(InvalidOption, match="distinct"):
        evaluate_cross_entropy(
            np.zeros((1, 2)), np.array([0]), LossOptions(), MetricOptions(top_k=(2, 2))
        )
    with pytest.raises(InvalidOption, match="calibration_bins"):
        evaluate_cross_entropy(
            np.zeros((1, 2)), np.array([0]), LossOptions(), MetricOptions(calibration_bins=0)
        )


def test_log_probs_output_only_when_asked() -> None:
    ev = evaluate_cross_entropy(np.zeros((1, 2)), np.array([0]), LossOptions(), MetricOptions())
    assert ev.result.log_probs is None
    opts = LossOptions(outputs=frozenset({"log_probs"}))
    ev = evaluate_cross_entropy(np.zeros((1, 2)), np.array([0]), opts, MetricOptions())
    assert_allclose(ev.result.log_probs, np.log([[0.5, 0.5]]), rtol=1e-15)


def test_ties_are_broken_as_argmax_breaks_them() -> None:
    # Integer logits in a small range: many ties; top-1 must still be the accuracy.
    rng = np.random.default_rng(9)
    logits = rng.integers(0, 3, size=(500, 6)).astype(float)
    labels = rng.integers(0, 6, size=500)
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(top_k=(1, 2)))
    assert ev.metrics["top_k"][0]["accuracy"] == ev.metrics["accuracy"]
    assert ev.metrics["accuracy"] == np.mean(logits.argmax(1) == labels)
    # Top-2 by the same rule: strictly larger, or equal with a lower index.
    lp, y = logits, labels
    ahead = (lp > lp[np.arange(500), y][:, None]) | (
        (lp == lp[np.arange(500), y][:, None]) & (np.arange(6)[None, :] < y[:, None])
    )
    assert ev.metrics["top_k"][1]["accuracy"] == np.mean(ahead.sum(1) < 2)
