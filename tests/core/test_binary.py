"""Sigmoid cross-entropy: goldens, pos_weight, smoothing, ignore_index, input kinds, errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit

from app.core import (
    InvalidShape,
    InvalidValue,
    LossOptions,
    NonFiniteInput,
    ZeroTotalWeight,
    score_binary_cross_entropy,
)

RNG = np.random.default_rng(7)
ALL_OUT = frozenset({"per_sample", "probs", "log_probs"})


def bce(x, y, **kw):
    return score_binary_cross_entropy(np.asarray(x), np.asarray(y), LossOptions(**kw))


def torch_formula(x, y, p=1.0):
    """PyTorch's binary_cross_entropy_with_logits in float64."""
    return (1 - y) * x + (1 + (p - 1) * y) * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))


# mpmath (dps 60): s = 1 / (1 + e^-x); l = -(p y log s + (1 - y) log(1 - s)).
GOLDEN = [
    pytest.param(0.5, 1.0, 1.1851924604502666, 0.4740769841801067, id="pos"),
    pytest.param(-1.0, 0.0, 0.3132616875182228, 0.3132616875182228, id="neg"),
    pytest.param(2.0, 0.3, 1.5840456160123102, 1.5269280110429726, id="soft"),
    pytest.param(0.0, 1.0, 1.7328679513998633, 0.6931471805599453, id="zero"),
    pytest.param(-40.0, 1.0, 100.0, 40.0, id="far_neg"),
    pytest.param(40.0, 0.0, 40.0, 40.0, id="far_pos"),
    pytest.param(1e-10, 1.0, 1.7328679512748633, 0.6931471805099453, id="tiny"),
]


@pytest.mark.parametrize(("x", "y", "with_pw", "plain"), GOLDEN)
def test_golden(x, y, with_pw, plain):
    assert_allclose(bce([x], [y], reduction="none").per_sample, [plain], rtol=1e-12)
    assert_allclose(
        bce([x], [y], reduction="none", pos_weight=2.5).per_sample, [with_pw], rtol=1e-12
    )


def test_against_pytorch_formula_multilabel():
    x = RNG.normal(scale=5, size=(20, 4))
    y = RNG.uniform(size=(20, 4))
    pw = np.array([1.0, 2.0, 0.5, 3.0])
    r = bce(x, y, pos_weight=pw, reduction="sum", outputs=ALL_OUT)
    assert_allclose(r.per_sample, torch_formula(x, y, pw), rtol=1e-12)
    assert_allclose(r.probs, expit(x), rtol=1e-12)
    assert_allclose(r.log_probs, np.log(expit(x)), rtol=1e-12)
    assert r.label_kind == "binary"


def test_pos_weight_along_axis():
    x = RNG.normal(size=(3, 4, 2))
    y = RNG.integers(0, 2, (3, 4, 2)).astype(float)
    pw = np.array([1.0, 2.0, 3.0, 4.0])
    r = bce(x, y, pos_weight=pw, axis=1, reduction="none")
    assert_allclose(r.per_sample, torch_formula(x, y, pw[:, None]), rtol=1e-12)
    cw = np.array([0.5, 1.0, 2.0, 0.0])
    rw = bce(x, y, class_weights=cw, axis=1, reduction="mean")
    assert_allclose(rw.loss, (torch_formula(x, y) * cw[:, None]).mean(), rtol=1e-12)


def test_label_smoothing():
    x, y = RNG.normal(size=6), RNG.integers(0, 2, 6).astype(float)
    r = bce(x, y, label_smoothing=0.2, reduction="none")
    assert_allclose(r.per_sample, torch_formula(x, y * 0.8 + 0.1), rtol=1e-12)


def test_sample_weights_and_total():
    x, y = RNG.normal(size=(3, 2)), RNG.integers(0, 2, (3, 2)).astype(float)
    sw = np.array([[1.0], [0.5], [2.0]])
    r = bce(x, y, sample_weights=sw)
    assert_allclose(r.total_weight, 2 * 3.5)
    assert_allclose(r.loss, (torch_formula(x, y) * sw).sum() / 7.0, rtol=1e-12)


def test_ignore_index():
    x = np.array([0.5, np.nan, 2.0, np.inf])
    y = np.array([1.0, -100.0, 0.0, -100.0])
    r = bce(x, y, ignore_index=-100, outputs=ALL_OUT, per_sample_diagnostics=True)
    assert_array_equal(r.per_sample[[1, 3]], [0.0, 0.0])
    assert r.total_weight == 2.0
    assert np.isnan(r.probs[[1, 3]]).all()
    assert r.diagnostics.count == 2
    assert_array_equal(r.diagnostics.per_sample.true_class_rank, [1, -1, 2, -1])
    with pytest.raises(ZeroTotalWeight) as info:
        bce([1.0], [-100.0], ignore_index=-100)
    assert info.value.loc == ("labels",)


def test_minus_inf_logit():
    r = bce([-np.inf, -np.inf], [0.0, 1.0], reduction="none")
    assert_array_equal(r.per_sample, [0.0, np.inf])


def test_temperature_and_scalar():
    r = bce(np.float64(3.0), np.float64(1.0), temperature=3.0)
    assert r.per_sample.shape == ()
    assert_allclose(r.loss, torch_formula(1.0, 1.0), rtol=1e-14)


def test_probs_and_log_probs_kinds():
    p = np.array([0.2, 0.9, 1.0, 0.0])
    y = np.array([0.0, 1.0, 1.0, 1.0])
    eps = np.finfo(np.float64).eps
    q = np.clip(p, eps, 1 - eps)
    expected = -(y * np.log(q) + (1 - y) * np.log1p(-q))
    assert_allclose(
        bce(p, y, input_kind="probs", reduction="none").per_sample, expected, rtol=1e-12
    )
    lp = np.log(np.array([0.2, 0.9, 0.5]))
    yl = np.array([0.0, 1.0, 1.0])
    expected = -(yl * lp + (1 - yl) * np.log1p(-np.exp(lp)))
    r = bce(lp, yl, input_kind="log_probs", reduction="none", per_sample_diagnostics=True)
    assert_allclose(r.per_sample, expected, rtol=1e-12)
    assert_array_equal(r.diagnostics.per_sample.predicted_class, [0, 1, 0])
    assert bce([0.0], [1.0], input_kind="log_probs").loss == 0.0


@pytest.mark.parametrize(
    ("x", "y", "kw", "error", "loc"),
    [
        pytest.param([0.5, 1.0], [2.0, 0.0], {}, InvalidValue, ("labels", 0), id="above_one"),
        pytest.param([0.5, 1.0], [0.0, np.nan], {}, InvalidValue, ("labels", 1), id="nan_label"),
        pytest.param([0.5, 1.0], [0.0], {}, InvalidShape, ("labels",), id="shape"),
        pytest.param([0.5, np.nan], [0.0, 1.0], {}, NonFiniteInput, ("logits", 1), id="nan"),
        pytest.param(
            [0.5, 1.5], [0.0, 1.0], {"input_kind": "probs"}, InvalidValue, ("probs", 1), id="prob"
        ),
        pytest.param(
            [0.5, 0.5],
            [0.0, 1.0],
            {"input_kind": "log_probs"},
            InvalidValue,
            ("log_probs", 0),
            id="lp",
        ),
        pytest.param(
            [0.5, 1.0],
            [0.0, 1.0],
            {"pos_weight": np.ones(3)},
            InvalidShape,
            ("pos_weight",),
            id="pw",
        ),
        pytest.param(
            [0.5, 1.0], [0.0, 1.0], {"pos_weight": -1.0}, InvalidValue, ("pos_weight",), id="pw_neg"
        ),
    ],
)
def test_errors(x, y, kw, error, loc):
    with pytest.raises(error) as info:
        bce(x, y, **kw)
    assert info.value.loc == loc


def test_error_ignores_ignored_elements():
    with pytest.raises(NonFiniteInput) as info:
        bce([[np.nan, 0.0], [np.nan, 1.0]], [[-1.0, 0.0], [1.0, 0.0]], ignore_index=-1)
    assert info.value.loc == ("logits", 1, 0)
    assert "1 invalid" in info.value.message
    bce([[2.0, 0.5]], [[-1.0, 0.0]], ignore_index=-1, input_kind="probs")
    with pytest.raises(InvalidValue) as info:
        bce([[0.5, 2.0]], [[-1.0, 0.0]], ignore_index=-1, input_kind="probs")
    assert info.value.loc == ("probs", 0, 1)


def test_float32():
    x = RNG.normal(size=50).astype(np.float32)
    y = RNG.uniform(size=50).astype(np.float32)
    r = bce(x, y, reduction="none")
    assert r.per_sample.dtype == np.float32
    assert_allclose(r.per_sample, torch_formula(x.astype(float), y.astype(float)), rtol=1e-5)


def test_integer_logits():
    r = bce(np.array([0, 2]), np.array([0, 1]), outputs=ALL_OUT)
    assert_allclose(
        r.per_sample, torch_formula(np.array([0.0, 2.0]), np.array([0.0, 1.0])), rtol=1e-12
    )
