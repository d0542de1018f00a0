"""Hypothesis properties: normalisation, positivity, identities, invariances, precision."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose

from app.core import LossOptions, logsumexp, score_cross_entropy, softmax

settings.register_profile("core", deadline=None, max_examples=60)
settings.load_profile("core")


@st.composite
def batches(draw, lo=-1e3, hi=1e3):
    n = draw(st.integers(1, 6))
    c = draw(st.integers(1, 6))
    x = draw(arrays(np.float64, (n, c), elements=st.floats(lo, hi)))
    y = draw(arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return x, y


def ce(x, y, **kw):
    return score_cross_entropy(x, y, LossOptions(reduction="none", **kw)).per_sample


@given(batches())
def test_softmax_rows_sum_to_one(xy):
    assert_allclose(softmax(xy[0]).sum(axis=-1), 1.0, rtol=1e-12)


@given(batches())
def test_cross_entropy_non_negative_and_identity(xy):
    x, y = xy
    per = ce(x, y)
    assert (per >= 0).all()
    naive = logsumexp(x) - x[np.arange(len(y)), y]
    assert_allclose(per, naive, rtol=1e-12, atol=1e-12 * np.abs(x).max(initial=1))


@given(batches(), st.floats(-1e3, 1e3))
def test_shift_invariance(xy, shift):
    x, y = xy
    atol = 1e-12 * (np.abs(x).max(initial=1) + abs(shift))
    assert_allclose(ce(x + shift, y), ce(x, y), rtol=1e-12, atol=atol)
    assert_allclose(softmax(x + shift), softmax(x), rtol=1e-9, atol=1e-12)


@given(
    batches(-50, 50),
    st.floats(0, 1),
    st.booleans(),
    st.data(),
)
def test_index_labels_equal_one_hot(xy, smoothing, weighted, data):
    x, y = xy
    c = x.shape[1]
    w = data.draw(arrays(np.float64, (c,), elements=st.floats(0, 5))) if weighted else None
    onehot = np.eye(c)[y]
    a = ce(x, y, label_smoothing=smoothing, class_weights=w)
    b = ce(x, onehot, label_smoothing=smoothing, class_weights=w)
    # PyTorch: (1-e) w_y nll_y + e/C sum_c w_c nll_c is sum_c w_c y'_c nll_c.
    assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@given(batches(-20, 20))
def test_float32_close_to_float64(xy):
    x, y = xy
    p64 = ce(x, y)
    p32 = ce(x.astype(np.float32), y)
    assert p32.dtype == np.float32
    assert_allclose(p32, p64, rtol=1e-5, atol=1e-5)
