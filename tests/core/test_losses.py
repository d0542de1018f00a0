"""Softmax cross-entropy: goldens, PyTorch semantics, weights, layouts, input kinds, errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import log_loss

from app.core import (
    InvalidLabel,
    InvalidOption,
    InvalidShape,
    InvalidValue,
    LossOptions,
    NonFiniteInput,
    ZeroTotalWeight,
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


def test_all_minus_inf_row():
    with pytest.raises(InvalidValue) as info:
        ce([[0.0, 1.0], [-np.inf, -np.inf], [-np.inf, -np.inf]], [0, 0, 1])
    assert info.value.loc == ("logits", 1)
    assert "2 rows" in info.value.message


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


@pytest.mark.parametrize(
    ("kw", "loc0"),
    [
        pytest.param({"ignore_index": -1}, "labels", id="all_ignored"),
        pytest.param({"sample_weights": np.zeros(2)}, "sample_weights", id="zero_sample_weights"),
        pytest.param({"class_weights": np.zeros(2)}, "class_weights", id="zero_class_weights"),
    ],
)
def test_zero_total_weight(kw, loc0):
    y = [-1, -1] if "ignore_index" in kw else [0, 1]
    with pytest.raises(ZeroTotalWeight) as info:
        ce([[0.0, 1.0], [1.0, 0.0]], y, **kw)
    assert info.value.loc == (loc0,)
    assert ce([[0.0, 1.0], [1.0, 0.0]], y, reduction="sum", **kw).loss == 0.0


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


@pytest.mark.parametrize(
    ("x", "kind", "error", "loc"),
    [
        pytest.param([[0.5, 0.6]], "probs", InvalidValue, ("probs", 0), id="probs_sum"),
        pytest.param([[1.5, -0.5]], "probs", InvalidValue, ("probs", 0, 0), id="probs_range"),
        pytest.param([[np.inf, 0.0]], "probs", NonFiniteInput, ("probs", 0, 0), id="probs_inf"),
        pytest.param([[0.1, -3.0]], "log_probs", InvalidValue, ("log_probs", 0, 0), id="lp_pos"),
        pytest.param([[-1.0, -1.0]], "log_probs", InvalidValue, ("log_probs", 0), id="lp_norm"),
        pytest.param(
            [[np.nan, 0.0]], "log_probs", NonFiniteInput, ("log_probs", 0, 0), id="lp_nan"
        ),
    ],
)
def test_input_kind_errors(x, kind, error, loc):
    with pytest.raises(error) as info:
        ce(x, [0], input_kind=kind)
    assert info.value.loc == loc


def test_float32_probs_json_decimals_pass():
    p = np.array([[0.1234567, 0.8765434]])  # float32 outputs printed to 7 digits
    assert ce(p, [1], input_kind="probs").loss > 0


@pytest.mark.parametrize(
    ("labels", "kw", "error", "loc", "text"),
    [
        pytest.param(
            [0, 12, 1, 13], {}, InvalidLabel, ("labels", 1), "got 12 at index [1]", id="range"
        ),
        pytest.param([0.0, 1.0, 1.0, 0.0], {}, InvalidLabel, ("labels",), "integers", id="float"),
        pytest.param(
            [True, False, True, True], {}, InvalidLabel, ("labels",), "integers", id="bool"
        ),
        pytest.param(["a", "b", "c", "d"], {}, InvalidLabel, ("labels",), "integers", id="str"),
        pytest.param([0, 1], {}, InvalidShape, ("labels",), "(4, 10)", id="shape"),
        pytest.param(np.full((4, 10), 0.2), {}, InvalidValue, ("labels", 0), "sum", id="prob_sum"),
        pytest.param(
            np.eye(10)[:4] * -1, {}, InvalidValue, ("labels", 0, 0), "[0, 1]", id="prob_neg"
        ),
    ],
)
def test_label_errors(labels, kw, error, loc, text):
    with pytest.raises(error) as info:
        ce(np.zeros((4, 10)), labels, **kw)
    assert info.value.loc == loc
    assert text in info.value.message


def test_label_error_message():
    with pytest.raises(InvalidLabel) as info:
        ce(np.zeros((5, 10)), [0, 1, 2, 12, 10])
    assert info.value.message == (
        "labels must be integers in [0, 10); got 12 at index [3] (2 invalid labels)"
    )


def test_nan_logit_message():
    x = np.zeros((4, 8))
    x[3, 7] = np.nan
    x[2, 1] = np.inf
    with pytest.raises(NonFiniteInput) as info:
        ce(x, [0, 0, 0, 0])
    assert info.value.loc == ("logits", 2, 1)
    assert (
        info.value.message
        == "logits must be finite or -inf; got inf at [2, 1] (2 non-finite values)"
    )


@pytest.mark.parametrize(
    ("x", "kw", "error", "loc"),
    [
        pytest.param(
            [[0.0, 1.0]],
            {"label_smoothing": 1.5},
            InvalidOption,
            ("label_smoothing",),
            id="smoothing",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"label_smoothing": np.nan},
            InvalidOption,
            ("label_smoothing",),
            id="smoothing_nan",
        ),
        pytest.param([[0.0, 1.0]], {"temperature": 0.0}, InvalidOption, ("temperature",), id="t0"),
        pytest.param(
            [[0.0, 1.0]], {"temperature": np.inf}, InvalidOption, ("temperature",), id="tinf"
        ),
        pytest.param(
            [[0.5, 0.5]],
            {"temperature": 2.0, "input_kind": "probs"},
            InvalidOption,
            ("temperature",),
            id="t_probs",
        ),
        pytest.param([[0.0, 1.0]], {"axis": 2}, InvalidOption, ("axis",), id="axis"),
        pytest.param([[0.0, 1.0]], {"axis": True}, InvalidOption, ("axis",), id="axis_bool"),
        pytest.param(
            [[0.0, 1.0]], {"reduction": "avg"}, InvalidOption, ("reduction",), id="reduction"
        ),
        pytest.param(
            [[0.0, 1.0]], {"input_kind": "odds"}, InvalidOption, ("input_kind",), id="kind"
        ),
        pytest.param(
            [[0.0, 1.0]], {"precision": "float16"}, InvalidOption, ("precision",), id="precision"
        ),
        pytest.param(
            [[0.0, 1.0]], {"outputs": frozenset({"x"})}, InvalidOption, ("outputs",), id="outputs"
        ),
        pytest.param(
            [[0.0, 1.0]], {"ignore_index": 1.5}, InvalidOption, ("ignore_index",), id="ignore_float"
        ),
        pytest.param(
            [[0.0, 1.0]], {"pos_weight": 2.0}, InvalidOption, ("pos_weight",), id="pos_weight"
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.ones(3)},
            InvalidShape,
            ("class_weights",),
            id="cw_shape",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.array([1.0, -1.0])},
            InvalidValue,
            ("class_weights", 1),
            id="cw_neg",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.array([np.nan, 1.0])},
            InvalidValue,
            ("class_weights", 0),
            id="cw_nan",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.array([True, True])},
            InvalidValue,
            ("class_weights",),
            id="cw_bool",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"sample_weights": np.ones(2)},
            InvalidShape,
            ("sample_weights",),
            id="sw_shape",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"sample_weights": np.ones((1, 1))},
            InvalidShape,
            ("sample_weights",),
            id="sw_rank",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"sample_weights": np.array([-1.0])},
            InvalidValue,
            ("sample_weights", 0),
            id="sw_neg",
        ),
        pytest.param(np.zeros((0, 3)), {}, InvalidShape, ("logits",), id="empty"),
        pytest.param(np.zeros((2, 0)), {}, InvalidShape, ("logits",), id="no_classes"),
        pytest.param(np.float64(1.0), {}, InvalidShape, ("logits",), id="scalar"),
        pytest.param([[True, False]], {}, InvalidValue, ("logits",), id="bool_logits"),
        pytest.param([[0.5, 0.5]], {"input_kind": "probs"}, None, None, id="ok_probs"),
    ],
)
def test_option_and_input_errors(x, kw, error, loc):
    y = [0] if np.ndim(x) == 2 and np.shape(x)[0] == 1 else 0
    if error is None:
        ce(x, y, **kw)
        return
    with pytest.raises(error) as info:
        ce(x, y, **kw)
    assert info.value.loc == loc


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


def test_rank_one_all_minus_inf():
    with pytest.raises(InvalidValue) as info:
        ce([-np.inf, -np.inf], 0)
    assert info.value.loc == ("logits",)


def test_errors_skip_ignored_rows():
    with pytest.raises(NonFiniteInput) as info:
        ce([[np.nan, 0.0], [np.nan, 0.0]], [-100, 0], ignore_index=-100)
    assert info.value.loc == ("logits", 1, 0)
    assert "(1 non-finite" in info.value.message
    with pytest.raises(InvalidValue) as info:
        ce([[-np.inf, -np.inf], [-np.inf, -np.inf]], [-100, 0], ignore_index=-100)
    assert info.value.loc == ("logits", 1)
    assert "(1 rows)" in info.value.message


def test_error_located_across_blocks():
    x = np.zeros((70_000, 2))
    x[69_999, 1] = np.nan
    with pytest.raises(NonFiniteInput) as info:
        ce(x, np.zeros(70_000, np.int64))
    assert info.value.loc == ("logits", 69_999, 1)


def test_sample_weights_not_broadcastable():
    with pytest.raises(InvalidShape) as info:
        ce(np.zeros((2, 3)), [0, 1], sample_weights=np.ones(3))
    assert info.value.loc == ("sample_weights",)


def test_non_finite_probability_labels_are_invalid_values():
    with pytest.raises(InvalidValue) as info:
        ce(np.zeros((2, 2)), [[0.5, 0.5], [np.nan, 1.0]])
    assert info.value.loc == ("labels", 1, 0)


@pytest.mark.parametrize("field", ["temperature", "label_smoothing"])
def test_bool_options_rejected(field):
    with pytest.raises(InvalidOption) as info:
        ce([[0.0, 1.0]], [0], **{field: True})
    assert info.value.loc == (field,)
