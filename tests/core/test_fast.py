"""The fast path of index-label cross-entropy agrees with the stable block path.

The stable path is forced with ``per_sample_diagnostics=True`` (the fast path leaves
per-sample diagnostics to it); both must give the same losses, probabilities and
batch diagnostics, including on rows the fast path hands over.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from app.core import (
    InvalidOption,
    InvalidValue,
    LossOptions,
    NonFiniteInput,
    score_cross_entropy,
)
from app.core._fast import FAST_BLOCK_BYTES

RNG = np.random.default_rng(7)
OUT = frozenset({"per_sample", "probs"})


def both(x, y, **kw):
    fast = score_cross_entropy(x, y, LossOptions(outputs=OUT, **kw))
    stable = score_cross_entropy(x, y, LossOptions(outputs=OUT, per_sample_diagnostics=True, **kw))
    return fast, stable


def assert_same(fast, stable, rtol):
    assert_allclose(fast.per_sample, stable.per_sample, rtol=rtol, atol=0)
    assert_allclose(fast.probs, stable.probs, rtol=rtol, atol=1e-300)
    assert fast.total_weight == stable.total_weight
    if fast.loss is not None:
        assert_allclose(fast.loss, stable.loss, rtol=rtol)
    fd, sd = fast.diagnostics, stable.diagnostics
    assert fd is not None
    assert sd is not None
    assert (fd.count, fd.accuracy) == (sd.count, sd.accuracy)
    assert fd.numerical == sd.numerical
    for name in ("mean_confidence", "mean_true_class_prob"):
        assert_allclose(getattr(fd, name), getattr(sd, name), rtol=rtol)
    # Entropy as log(total) - sum p x: absolute error of a few ulps of the log-sum-exp.
    assert_allclose(fd.mean_entropy, sd.mean_entropy, rtol=rtol, atol=rtol)


@pytest.mark.parametrize(
    ("shape", "dtype", "rtol"),
    [
        pytest.param((64, 10), np.float64, 1e-12, id="64x10-f64"),
        pytest.param((64, 10), np.float32, 2e-5, id="64x10-f32"),
        pytest.param((700, 1000), np.float32, 2e-5, id="several-blocks-f32"),
        pytest.param((3, 2500), np.float64, 1e-12, id="wide-rows-f64"),
        pytest.param((5, 4, 7), np.float64, 1e-12, id="sequence"),
    ],
)
def test_random_logits_match_the_stable_path(shape, dtype, rtol):
    x = (RNG.standard_normal(shape) * 4).astype(dtype)
    y = RNG.integers(0, shape[-1], shape[:-1])
    assert_same(*both(x, y), rtol)


def test_small_losses_keep_their_relative_precision():
    # A textbook logsumexp(x) - x_y cancels to 0 here; log1p of the small sum does not.
    x = np.array([[40.0, 0.0, 0.0], [0.0, 30.0, -5.0]])
    fast, _ = both(x, np.array([0, 1]))
    expected = np.log1p([2 * np.exp(-40.0), np.exp(-30.0) + np.exp(-35.0)])
    assert_allclose(fast.per_sample, expected, rtol=1e-14)


def test_rows_handed_to_the_stable_path():
    x = RNG.standard_normal((8, 6))
    x[1] = [1000.0, 999.0, 0.0, 0.0, 0.0, 0.0]  # overflows exp
    x[2] = -1000.0 + RNG.standard_normal(6)  # underflows exp
    x[3, 2] = -np.inf  # a masked class (the diagnostics' entropy needs the stable path)
    x[4, 0] = -np.inf  # the label's logit is -inf: loss +inf
    x[5, :] = -800.0
    x[5, 3] = 0.0  # one finite class, the others vanish: subnormal sum
    y = np.array([0, 1, 0, 1, 0, 2, 3, 4])
    fast, stable = both(x, y)
    assert np.isinf(fast.per_sample[4])
    assert_same(fast, stable, 1e-12)


def test_masked_classes_without_diagnostics():
    x = RNG.standard_normal((4, 5))
    x[:, 4] = -np.inf
    x[2, 2] = -np.inf  # the label's class
    fast, stable = both(x, np.array([0, 1, 2, 3]), diagnostics=False)
    assert_allclose(fast.per_sample, stable.per_sample, rtol=1e-12)
    assert_array_equal(fast.probs[:, 4], 0)
    assert np.isinf(fast.per_sample[2])


def test_ignored_rows_may_hold_anything():
    x = RNG.standard_normal((6, 4))
    x[1] = np.nan
    x[3, 2] = np.inf
    y = np.array([0, -100, 2, -100, 1, 3])
    fast, stable = both(x, y, ignore_index=-100)
    assert_array_equal(fast.per_sample[[1, 3]], 0)
    assert_same(fast, stable, 1e-12)


def test_weights_temperature_and_integer_logits():
    x = RNG.integers(-5, 5, (20, 7))
    y = RNG.integers(0, 7, 20)
    kw = dict(
        class_weights=RNG.random(7),
        sample_weights=RNG.random(20),
        temperature=2.5,
        precision="float32",
    )
    assert_same(*both(x, y, **kw), 2e-5)
    kw["reduction"] = "none"
    assert_same(*both(x.astype(np.float16), y, **kw), 2e-5)


def test_extremes_counted_by_the_diagnostics():
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    x[0, 1] = -120.0  # exp underflows in float32; its probability rounds to 0
    x[2, 3] = -90.0
    fast, stable = both(x, np.array([0, 1, 2, 3, 0]))
    assert fast.diagnostics.numerical.underflow_rows == 1
    assert fast.diagnostics.numerical.zero_probs == 1
    assert_same(fast, stable, 2e-5)


def test_errors_name_the_first_bad_position():
    x = RNG.standard_normal((5, 3))
    x[3, 1] = np.nan
    with pytest.raises(NonFiniteInput) as info:
        score_cross_entropy(x, np.zeros(5, int), LossOptions())
    assert info.value.loc == ("logits", 3, 1)
    x[3, 1] = 0
    x[2] = -np.inf
    with pytest.raises(InvalidValue) as row:
        score_cross_entropy(x, np.zeros(5, int), LossOptions())
    assert row.value.loc == ("logits", 2)


def test_blocks_cover_every_row_once():
    c = 50
    n = 3 * FAST_BLOCK_BYTES // (c * 8) + 5
    x = RNG.standard_normal((n, c))
    y = RNG.integers(0, c, n)
    assert_same(*both(x, y), 1e-12)


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(RNG.standard_normal((4, 6, 5))[:, :3], id="rows-not-flat"),
        pytest.param(RNG.standard_normal((6, 10))[:, ::2], id="strided-classes"),
        pytest.param(np.moveaxis(RNG.standard_normal((6, 5)), 0, 1).T, id="fortran-order"),
    ],
)
def test_layouts_without_a_flat_view_take_the_stable_path(x):
    y = RNG.integers(0, x.shape[-1], x.shape[:-1])
    assert_same(*both(x, y), 1e-12)


def test_a_temperature_that_overflows_a_logit_is_an_error_even_to_minus_inf():
    # Only -inf appears (no +inf, no NaN), which the fast path alone would accept.
    x = np.array([[0.0, 0.0, -1e10], [1.0, 2.0, 3.0]])
    with pytest.raises(InvalidOption) as info:
        score_cross_entropy(x, np.array([0, 1]), LossOptions(temperature=1e-300))
    assert info.value.loc == ("temperature",)
