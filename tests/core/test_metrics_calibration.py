"""Calibration against sklearn's calibration_curve and direct float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scorer_client.metrics.calibration import bin_index, calibration_counts, calibration_errors
from sklearn.calibration import calibration_curve

from app.core import LossOptions
from app.core.metrics import MetricOptions, evaluate_cross_entropy


def _data(n: int = 500, c: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, c))
    labels = rng.integers(0, c, size=n)
    return logits, labels


def _direct(logits, labels, bins):
    """ECE, MCE, RMS written out sample by sample in float64."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf, pred = p.max(1), p.argmax(1)
    hit = (pred == labels).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    ece, mce, ms = 0.0, 0.0, 0.0
    for b in range(bins):
        upper_ok = conf < edges[b + 1] if b < bins - 1 else conf <= 1.0
        inside = (conf >= edges[b]) & upper_ok
        if inside.any():
            gap = abs(hit[inside].mean() - conf[inside].mean())
            ece += inside.mean() * gap
            ms += inside.mean() * gap**2
            mce = max(mce, gap)
    return ece, mce, np.sqrt(ms), conf, hit


@pytest.mark.parametrize("bins", [pytest.param(b, id=f"bins-{b}") for b in (1, 5, 15, 40)])
def test_errors_match_direct_formulas(bins: int) -> None:
    logits, labels = _data()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(calibration_bins=bins))
    cal = ev.metrics["calibration"]
    ece, mce, rms, _, _ = _direct(logits, labels, bins)
    assert_allclose([cal["ece"], cal["mce"], cal["rms"]], [ece, mce, rms], rtol=1e-12)
    assert sum(b["count"] for b in cal["reliability"]) == len(labels)


def test_reliability_matches_sklearn_calibration_curve() -> None:
    logits, labels = _data(seed=3)
    ev = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(calibration_bins=10))
    _, _, _, conf, hit = _direct(logits, labels, 10)
    prob_true, prob_pred = calibration_curve(hit, conf, n_bins=10, strategy="uniform")
    full = [b for b in ev.metrics["calibration"]["reliability"] if b["count"]]
    assert_allclose([b["accuracy"] for b in full], prob_true, rtol=1e-12)
    assert_allclose([b["mean_confidence"] for b in full], prob_pred, rtol=1e-12)


def test_bins_are_lower_closed_and_one_is_in_the_last_bin() -> None:
    edges = np.linspace(0, 1, 16)
    assert bin_index(edges, 15).tolist() == [*range(15), 14]
    count, conf_sum, correct = calibration_counts(np.array([1.0, 1.0]), np.array([True, False]), 15)
    assert count[-1] == 2
    assert conf_sum[-1] == 2.0
    assert correct[-1] == 1


def test_reliability_bin_fields() -> None:
    r = calibration_errors(np.array([0, 2]), np.array([0.0, 1.5]), np.array([0, 1]))
    assert r["reliability"][0] == {
        "lower": 0.0,
        "upper": 0.5,
        "count": 0,
        "mean_confidence": None,
        "accuracy": None,
    }
    assert r["reliability"][1]["mean_confidence"] == 0.75
    assert r["reliability"][1]["accuracy"] == 0.5
    assert r["ece"] == pytest.approx(0.25, rel=1e-15)


def test_no_samples_gives_none() -> None:
    r = calibration_errors(np.zeros(3, np.int64), np.zeros(3), np.zeros(3, np.int64))
    assert (r["ece"], r["mce"], r["rms"]) == (None, None, None)


def test_perfectly_calibrated_is_zero() -> None:
    # Two classes, confidence 0.75 each, three of four right.
    logits = np.log(np.array([[0.75, 0.25]] * 4))
    ev = evaluate_cross_entropy(
        logits, np.array([0, 0, 0, 1]), LossOptions(), MetricOptions(calibration_bins=15)
    )
    assert ev.metrics["calibration"]["ece"] == pytest.approx(0.0, abs=1e-15)
