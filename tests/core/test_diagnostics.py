"""Batch and per-sample diagnostics, and the numerical (textbook-failure) counters."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, softmax

from app.core import (
    LossOptions,
    SoftmaxOptions,
    score_binary_cross_entropy,
    score_cross_entropy,
    score_softmax,
)

OPTS = LossOptions(per_sample_diagnostics=True)


def test_index_labels():
    x = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 1, 0])
    d = score_cross_entropy(x, y, OPTS).diagnostics
    p = softmax(x, axis=1)
    assert d.count == 3
    assert_allclose(d.accuracy, 2 / 3)  # ties: argmax takes the first class
    assert_allclose(d.mean_confidence, p.max(1).mean(), rtol=1e-12)
    assert_allclose(d.mean_entropy, (-(p * np.log(p)).sum(1)).mean(), rtol=1e-12)
    assert_allclose(d.mean_true_class_prob, p[[0, 1, 2], y].mean(), rtol=1e-12)
    ps = d.per_sample
    assert_array_equal(ps.predicted_class, [2, 0, 0])
    assert_array_equal(ps.true_class_rank, [1, 2, 1])
    top = np.sort(p, 1)
    assert_allclose(ps.margin, top[:, -1] - top[:, -2], rtol=1e-12, atol=1e-15)
    assert_allclose(ps.confidence, p.max(1), rtol=1e-12)
    assert ps.entropy.shape == (3,)


def test_probability_labels_and_shape():
    x = np.random.default_rng(3).normal(size=(2, 3, 4))
    y = softmax(np.random.default_rng(4).normal(size=(2, 3, 4)), axis=-1)
    d = score_cross_entropy(x, y, OPTS).diagnostics
    p = softmax(x, axis=-1)
    assert d.per_sample.true_class_prob.shape == (2, 3)
    assert_allclose(d.per_sample.true_class_prob, (y * p).sum(-1), rtol=1e-12)
    assert_allclose(d.accuracy, np.mean(p.argmax(-1) == y.argmax(-1)))


def test_single_class_margin_is_confidence():
    d = score_cross_entropy(np.array([[2.0]]), np.array([0]), OPTS).diagnostics
    assert_array_equal(d.per_sample.margin, [1.0])
    assert d.mean_entropy == 0.0


def test_masked_class_entropy_and_zero_probs():
    d = score_cross_entropy(np.array([[0.0, -np.inf, 0.0]]), np.array([0]), OPTS).diagnostics
    assert_allclose(d.mean_entropy, np.log(2), rtol=1e-15)
    assert d.numerical.zero_probs == 1


@pytest.mark.parametrize(
    ("dtype", "big", "over"),
    [pytest.param(np.float32, 88.8, 1, id="f32"), pytest.param(np.float64, 88.8, 0, id="f64")],
)
def test_overflow_rows_depend_on_precision(dtype, big, over):
    x = np.array([[big, 0.0], [1.0, 0.0]], dtype)
    n = score_cross_entropy(x, np.array([0, 0]), LossOptions()).diagnostics.numerical
    assert n.overflow_rows == over
    assert_allclose(n.max_abs_logit, big, rtol=1e-6)


def test_underflow_rows_and_zero_probs():
    x = np.array([[0.0, -800.0], [0.0, 800.0], [0.0, 1.0]])
    n = score_cross_entropy(x, np.array([0, 1, 0]), LossOptions()).diagnostics.numerical
    assert n.underflow_rows == 1  # exp(-800) == 0
    assert n.overflow_rows == 1  # exp(800) == inf
    assert n.zero_probs == 2  # p = exp(-800) and exp(-800) again


def test_all_ignored_diagnostics_are_none():
    r = score_cross_entropy(
        np.array([[0.0, 1.0]]), np.array([-1]), LossOptions(ignore_index=-1, reduction="sum")
    )
    d = r.diagnostics
    assert d.count == 0
    assert d.accuracy is None
    assert d.mean_confidence is None


def test_disabled():
    r = score_cross_entropy(np.array([[0.0, 1.0]]), np.array([0]), LossOptions(diagnostics=False))
    assert r.diagnostics is None
    r = score_binary_cross_entropy(np.array([0.0]), np.array([1.0]), LossOptions(diagnostics=False))
    assert r.diagnostics is None


def test_binary():
    x = np.array([[2.0, -1.0], [0.5, -200.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    d = score_binary_cross_entropy(x, y, OPTS).diagnostics
    s = expit(x)
    assert d.count == 4
    assert_allclose(d.accuracy, 0.5)
    assert_allclose(d.mean_confidence, np.maximum(s, 1 - s).mean(), rtol=1e-12)
    assert_allclose(d.mean_true_class_prob, (y * s + (1 - y) * (1 - s)).mean(), rtol=1e-12)
    ent = -(s * np.log(s) + (1 - s) * np.log1p(-s))
    assert_allclose(d.mean_entropy, ent.mean(), rtol=1e-12)
    ps = d.per_sample
    assert_array_equal(ps.predicted_class, [[1, 0], [1, 0]])
    assert_array_equal(ps.true_class_rank, [[1, 2], [2, 1]])
    assert_allclose(ps.margin, np.abs(2 * s - 1), rtol=1e-12)
    n = d.numerical
    assert n.max_abs_logit == 200.0
    assert n.overflow_rows == 0
    assert n.underflow_rows == 0  # textbook 1 / (1 + exp(200)) is 1.4e-87, not 0
    assert n.zero_probs == 0


def test_binary_textbook_failures():
    x = np.array([-800.0, 40.0, 0.0, -np.inf])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    n = score_binary_cross_entropy(x, y, LossOptions()).diagnostics.numerical
    assert n.overflow_rows == 2  # exp(800) and exp(inf) overflow
    assert n.underflow_rows == 3  # s == 0 (-800, -inf) and s == 1 (40)
    assert n.zero_probs == 2  # stable s = exp(-800) and s of -inf are exactly 0
    assert n.max_abs_logit == 800.0


def test_binary_probs_kind_has_no_textbook_counts():
    d = score_binary_cross_entropy(
        np.array([0.2, 0.9]), np.array([0.0, 1.0]), LossOptions(input_kind="probs")
    ).diagnostics
    assert d.accuracy == 1.0
    assert d.numerical.overflow_rows == 0
    assert d.numerical.max_abs_logit == 0.0


def test_softmax_diagnostics():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]])
    d = score_softmax(x, SoftmaxOptions()).diagnostics
    p = softmax(x, axis=1)
    assert d.count == 2
    assert d.per_sample is None
    assert_allclose(d.mean_confidence, p.max(1).mean(), rtol=1e-12)
    assert d.numerical.zero_probs == 1
