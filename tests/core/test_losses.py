"""Softmax cross-entropy: goldens, PyTorch semantics, weights, layouts, input kinds, errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import log_loss

from app.core import (
    LossOptions,
    NonFiniteInput,
    log_softmax,
    logsumexp,
    score_cross_entropy,
)

RNG = np.random.default_rng(42)
ALL_OUT = frozenset({"per_sample", "probs", "log_probs"})


def ce(x, y, **kw):
    return score_cross_entropy(np.asarray(x), np.asarray(y), LossOptions(**kw))


def reference(x, y, w=None, e=0.0, sw=None):
    """Direct float64 PyTorch formula via scipy-like log_softmax."""
    x = np.asarray(x, np.float64)
    c = x.shape[-1]
    w = np.ones(c) if w is None else np.asarray(w)
    lp = log_softmax(x)
    if y.shape == x.shape:
        t = y * (1 - e) + e / c
        per = -(w * t * lp).sum(-1)
        tw = np.ones(per.shape)
    else:
        ly = np.take_along_axis(lp, y[..., None], -1)[..., 0]
        per = (1 - e) * w[y] * -ly + e / c * -(w * lp).sum(-1)
        tw = w[y]
    if sw is not None:
        per, tw = per * sw, tw * sw
    return per, per.sum() / tw.sum()


def test_classic_golden():
    # mpmath (dps 60): log(e + e^2 + e^3) - 3.
    r = ce([[1.0, 2.0, 3.0]], [2], outputs=ALL_OUT)
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-12)
    assert_allclose(
        r.probs[0], [0.09003057317038046, 0.24472847105479764, 0.6652409557748219], rtol=1e-12
    )
    assert_allclose(
        r.log_probs[0], [-2.40760596444438, -1.4076059644443804, -0.4076059644443803], rtol=1e-12
    )
    assert r.label_kind == "index"
    assert r.precision == "float64"
    assert r.reduction == "mean"
    assert r.total_weight == 1.0


def test_smoothing_with_class_weights_golden():
    # mpmath (dps 60): (1-e) w_1 (L - x_1) + e/3 sum_c w_c (L - x_c), L = log sum exp x.
    r = ce([[0.2, 1.3, -0.4]], [1], class_weights=np.array([0.5, 2.0, 1.5]), label_smoothing=0.1)
    assert_allclose(r.per_sample, [0.9071774694094459], rtol=1e-12)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        pytest.param([1000.0, 1000.0], np.log(2), id="1000_1000"),
        pytest.param([1e4, -1e4], 0.0, id="pm1e4"),
        pytest.param([0.0, -np.inf], 0.0, id="masked_other_class"),
    ],
)
def test_extremes(x, expected):
    assert_allclose(ce([x], [0]).loss, expected, rtol=1e-15, atol=0)


def test_minus_inf_at_label_is_inf_not_nan():
    r = ce([[0.0, -np.inf, 1.0]], [1], reduction="none", outputs=ALL_OUT)
    assert r.per_sample[0] == np.inf
    assert r.probs[0, 1] == 0.0


def test_zero_target_mass_on_masked_class():
    r = ce([[0.0, -np.inf, 1.0]], [[0.5, 0.0, 0.5]], reduction="none")
    expected = -(0.5 * log_softmax([0.0, 1.0])).sum()
    assert_allclose(r.per_sample, [expected], rtol=1e-14)


def test_class_weight_zero_on_masked_class_with_smoothing():
    r = ce([[0.0, -np.inf, 1.0]], [0], class_weights=np.array([1.0, 0.0, 1.0]), label_smoothing=0.1)
    assert np.isfinite(r.loss)


def test_random_against_reference():
    x = RNG.normal(scale=3, size=(50, 7))
    y = RNG.integers(0, 7, 50)
    w = RNG.uniform(0.1, 2, 7)
    sw = RNG.uniform(0, 2, 50)
    for e in (0.0, 0.3):
        r = ce(x, y, class_weights=w, sample_weights=sw, label_smoothing=e)
        per, mean = reference(x, y, w, e, sw)
        assert_allclose(r.per_sample, per, rtol=1e-12)
        assert_allclose(r.loss, mean, rtol=1e-12)
        assert_allclose(r.total_weight, (w[y] * sw).sum(), rtol=1e-12)


def test_probability_labels_against_reference():
    x = RNG.normal(size=(20, 4))
    y = RNG.dirichlet(np.ones(4), 20)
    w = RNG.uniform(0.1, 2, 4)
    r = ce(x, y, class_weights=w, label_smoothing=0.2)
    per, _ = reference(x, y, w, 0.2)
    assert_allclose(r.per_sample, per, rtol=1e-12)
    assert_allclose(r.loss, per.sum() / 20, rtol=1e-12)
    assert r.label_kind == "probability"
    sw = RNG.uniform(0, 1, 20)
    r = ce(x, y, sample_weights=sw)
    assert_allclose(r.total_weight, sw.sum(), rtol=1e-12)


def test_int_one_hot_labels_from_json():
    r = ce([[1.0, 2.0, 3.0]], [[0, 0, 1]])
    assert r.label_kind == "probability"
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-12)


def test_logits_equal_labels_logsumexp_minus_label():
    x = RNG.normal(scale=10, size=(30, 5))
    y = RNG.integers(0, 5, 30)
    r = ce(x, y, reduction="none")
    # atol: the difference of two large numbers loses what the shifted form keeps.
    assert_allclose(r.per_sample, logsumexp(x) - x[np.arange(30), y], rtol=1e-12, atol=1e-13)


def test_reductions():
    x, y = [[1.0, 2.0, 3.0]] * 3, [2, 2, 2]
    assert ce(x, y, reduction="none").loss is None
    assert_allclose(ce(x, y, reduction="sum").loss, 3 * 0.4076059644443804, rtol=1e-12)
    assert_allclose(ce(x, y, reduction="none").loss_sum, 3 * 0.4076059644443804, rtol=1e-12)


def test_ignore_index_with_nan_logits():
    x = np.array([[1.0, 2.0, 3.0], [np.nan, np.inf, 0.0], [-np.inf, -np.inf, -np.inf]])
    x.flags.writeable = False
    r = ce(x, [2, -100, -100], ignore_index=-100, outputs=ALL_OUT, per_sample_diagnostics=True)
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-12)
    assert_array_equal(r.per_sample[1:], [0.0, 0.0])
    assert r.total_weight == 1.0
    assert np.isnan(r.probs[1:]).all()
    assert r.diagnostics.count == 1
    assert_array_equal(r.diagnostics.per_sample.predicted_class, [2, -1, -1])
    assert np.isnan(r.diagnostics.per_sample.confidence[1:]).all()


def test_ignored_valid_rows_keep_their_probs():
    r = ce([[0.0, 0.0], [1.0, 2.0]], [0, 5], ignore_index=5, outputs=ALL_OUT)
    assert_allclose(r.probs[1], [0.2689414213699951, 0.7310585786300049], rtol=1e-12)


def test_ignore_index_inside_class_range():
    r = ce([[1.0, 2.0, 3.0], [5.0, 0.0, 0.0]], [2, 0], ignore_index=0)
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-12)


def test_ntc_and_axis():
    x = RNG.normal(size=(3, 4, 5))  # [N, T, C]
    y = RNG.integers(0, 5, (3, 4))
    r = ce(x, y, reduction="none", outputs=ALL_OUT)
    assert r.per_sample.shape == (3, 4)
    assert_allclose(r.per_sample, reference(x, y)[0], rtol=1e-12)
    # Same data with the class axis in the middle ([N, C, T], PyTorch layout).
    xt = np.moveaxis(x, -1, 1)
    rt = ce(xt, y, reduction="none", axis=1, outputs=ALL_OUT)
    assert_allclose(rt.per_sample, r.per_sample, rtol=1e-15)
    assert rt.probs.shape == xt.shape
    assert_allclose(np.moveaxis(rt.probs, 1, -1), r.probs, rtol=1e-15)
    # Probability labels in the caller's layout, and a first offender in that layout.
    yp = np.moveaxis(np.eye(5)[y], -1, 1)
    assert_allclose(ce(xt, yp, reduction="none", axis=1).per_sample, r.per_sample, rtol=1e-12)
    bad = xt.copy()
    bad[2, 1, 0] = bad[1, 3, 2] = np.nan
    with pytest.raises(NonFiniteInput) as info:
        ce(bad, y, axis=1)
    assert info.value.loc == ("logits", 1, 3, 2)
    assert "2 non-finite" in info.value.message


def test_single_row_scalar_label():
    r = ce([1.0, 2.0, 3.0], 2, outputs=ALL_OUT)
    assert r.per_sample.shape == ()
    assert r.probs.shape == (3,)
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-12)


def test_large_batch_in_blocks():
    x = RNG.normal(size=(40_000, 3)).astype(np.float32)
    y = RNG.integers(0, 3, 40_000)
    r = ce(x, y, reduction="none", outputs=ALL_OUT)
    assert r.precision == "float32"
    assert r.per_sample.dtype == np.float32
    assert_allclose(r.per_sample, reference(x, y)[0], rtol=2e-5, atol=1e-6)


def test_temperature():
    x = RNG.normal(size=(6, 4))
    y = RNG.integers(0, 4, 6)
    assert_allclose(ce(x, y, temperature=2.5).loss, ce(x / 2.5, y).loss, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_probs_input_against_sklearn(dtype):
    p = RNG.dirichlet(np.ones(4), 25).astype(dtype)
    p[0] = [1.0, 0.0, 0.0, 0.0]
    p[1] = [0.0, 1.0, 0.0, 0.0]
    y = RNG.integers(0, 4, 25)
    y[1] = 0  # probability 0 at the true class: clipped to eps
    r = ce(p, y, input_kind="probs", precision="float64", outputs=ALL_OUT)
    expected = log_loss(y, p, labels=[0, 1, 2, 3])
    assert_allclose(r.loss, expected, rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_log_probs_input_is_nll():
    lp = log_softmax(RNG.normal(size=(5, 3)))
    y = RNG.integers(0, 3, 5)
    r = ce(lp, y, input_kind="log_probs", reduction="none")
    assert_allclose(r.per_sample, -lp[np.arange(5), y], rtol=1e-15)
    assert ce([[0.0, -np.inf]], [0], input_kind="log_probs").loss == 0.0


def test_float32_probs_json_decimals_pass():
    p = np.array([[0.1234567, 0.8765434]])  # float32 outputs printed to 7 digits
    assert ce(p, [1], input_kind="probs").loss > 0


def test_broadcast_sample_weights():
    x, y = RNG.normal(size=(2, 3, 4)), RNG.integers(0, 4, (2, 3))
    sw = np.array([1.0, 2.0, 0.5])
    r = ce(x, y, sample_weights=sw, reduction="none")
    assert_allclose(r.per_sample, ce(x, y, reduction="none").per_sample * sw, rtol=1e-15)


def test_inputs_never_written():
    x = RNG.normal(size=(10, 5))
    y = RNG.integers(0, 5, 10)
    x.flags.writeable = False
    y.flags.writeable = False
    copy = x.copy()
    ce(x, y, outputs=ALL_OUT, temperature=3.0, per_sample_diagnostics=True)
    assert_array_equal(x, copy)


def test_integer_logits_and_precision():
    r = ce(np.array([[1, 2, 3]], np.int32), [2], precision="float32")
    assert r.per_sample.dtype == np.float32
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-6)
    assert ce(np.array([[1, 2, 3]], np.float16), [2]).precision == "float32"


def test_non_contiguous_moved_view():
    # A class axis in the middle of a non-contiguous array takes the gather path.
    x = RNG.normal(size=(4, 6, 3))[:, ::2, :]
    y = RNG.integers(0, 2, (4, 3))
    xt = np.moveaxis(x, 1, 2)  # [4, 3, 3] view, class axis 1
    r = ce(x, y.T.copy().T, axis=1, reduction="none")
    assert_allclose(r.per_sample, reference(np.moveaxis(x, 1, -1), y)[0], rtol=1e-12)
    assert xt.shape == (4, 3, 3)


def test_integer_logits_with_ignore_index():
    r = ce(np.array([[1, 2, 3], [0, 0, 0]]), [2, -1], ignore_index=-1)
    assert_allclose(r.loss, 0.4076059644443804, rtol=1e-12)
