"""logsumexp, log_softmax, softmax: goldens, extremes, special values, scipy agreement."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from numpy.testing import assert_allclose, assert_array_equal

from app.core import log_softmax, logsumexp, softmax

# Expected values computed with mpmath (mp.dps = 60) from the exact binary values of
# the float64 inputs, then rounded to float64:
#   L = mp.log(sum(mp.e ** mp.mpf(x) for x in xs)); p = mp.e ** (mp.mpf(x) - L)
GOLDEN = [
    pytest.param(
        [1.0, 2.0, 3.0],
        3.40760596444438,
        [0.09003057317038046, 0.24472847105479764, 0.6652409557748219],
        [-2.40760596444438, -1.4076059644443804, -0.4076059644443803],
        id="classic",
    ),
    pytest.param(
        [0.0, 1.0, 2.0, 3.0],
        3.4401896985611953,
        [0.03205860328008499, 0.08714431874203257, 0.23688281808991013, 0.6439142598879724],
        [-3.4401896985611953, -2.4401896985611953, -1.4401896985611953, -0.44018969856119533],
        id="arange4",
    ),
    pytest.param(
        [1e-08, 2e-08, -3e-08],
        1.09861228866811,
        [0.3333333366666666, 0.33333334, 0.33333332333333343],
        [-1.0986122786681098, -1.09861226866811, -1.0986123186681098],
        id="tiny",
    ),
    pytest.param(
        [30.0, -30.0, 0.5],
        30.000000000000153,
        [0.9999999999998457, 8.75651076269517e-27, 1.5428112031916497e-13],
        [-1.5428112031918564e-13, -60.000000000000156, -29.500000000000153],
        id="dominant",
    ),
    pytest.param(
        [1000.0, 1000.0],
        1000.6931471805599,
        [0.5, 0.5],
        [-0.6931471805599453, -0.6931471805599453],
        id="1000_1000",
    ),
    pytest.param([1e4, -1e4], 1e4, [1.0, 0.0], [0.0, -2e4], id="pm1e4"),
]


@pytest.mark.parametrize(("x", "lse", "p", "lp"), GOLDEN)
def test_golden(x, lse, p, lp):
    assert_allclose(logsumexp(x), lse, rtol=1e-12)
    assert_allclose(softmax(x), p, rtol=1e-12)
    assert_allclose(log_softmax(x), lp, rtol=1e-12)
    # Translation property: shifting every logit leaves (log-)softmax unchanged.
    assert_allclose(softmax(np.asarray(x) + 100), p, rtol=1e-12)


def test_dominant_logit_keeps_relative_precision():
    # The max term kept out of the sum (log1p) gives -log p_max to full precision.
    assert_allclose(-log_softmax([30.0, -30.0, 0.5])[0], 1.5428112031918564e-13, rtol=1e-12)


def test_masked_classes():
    x = np.array([[0.0, -np.inf, 0.0], [-np.inf, 5.0, -np.inf]])
    assert_allclose(softmax(x), [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]], rtol=1e-15)
    assert_array_equal(log_softmax(x)[0], [-np.log(2), -np.inf, -np.log(2)])
    assert_allclose(logsumexp(x), [np.log(2), 5.0], rtol=1e-15)


def test_all_minus_inf_row():
    assert logsumexp([-np.inf, -np.inf]) == -np.inf


def test_nan_and_inf_propagate_without_warnings():
    assert np.isnan(logsumexp([np.nan, 1.0]))
    assert logsumexp([np.inf, 1.0]) == np.inf


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtype_kept(dtype):
    x = np.array([[1.0, 2.0, 3.0]], dtype)
    assert softmax(x).dtype == dtype
    assert logsumexp(x).dtype == dtype


def test_integers_become_float64():
    assert logsumexp(np.array([1, 2, 3])).dtype == np.float64


def test_float32_near_overflow():
    x = np.array([88.8, 88.8, 0.0], np.float32)
    assert_allclose(logsumexp(x), 88.8 + np.log(2), rtol=1e-6)
    assert np.all(np.isfinite(softmax(x)))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_against_scipy(axis, keepdims):
    x = np.random.default_rng(0).normal(scale=20, size=(4, 5, 6))
    assert_allclose(
        logsumexp(x, axis=axis, keepdims=keepdims),
        sp.logsumexp(x, axis=axis, keepdims=keepdims),
        rtol=1e-13,
    )
    assert_allclose(softmax(x, axis=axis), sp.softmax(x, axis=axis), rtol=1e-12, atol=1e-300)
    # atol: near the row max scipy's log(sum) loses the relative precision log1p keeps.
    assert_allclose(log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis), rtol=1e-12, atol=1e-14)


def test_rows_without_a_softmax_are_nan_or_zero() -> None:
    # NaN or +inf in a row: no softmax (NaN across it); all -inf: probabilities 0.
    assert np.isnan(softmax([np.nan, 0.0])).all()
    assert np.isnan(softmax([np.inf, 0.0])).all()
    assert np.isnan(log_softmax([np.inf, 0.0])).all()
    assert_array_equal(softmax([-np.inf, -np.inf]), [0.0, 0.0])
    assert_array_equal(log_softmax([-np.inf, -np.inf]), [-np.inf, -np.inf])
    assert logsumexp([np.inf, 0.0]) == np.inf
    assert np.isnan(logsumexp([np.nan, 0.0]))
    mixed = softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, np.nan]]))
    assert np.isfinite(mixed[0]).all()
    assert np.isnan(mixed[1]).all()
