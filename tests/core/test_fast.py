"""The fast path of index-label cross-entropy agrees with the stable block path.

The stable path is forced with ``per_sample_diagnostics=True`` (the fast path leaves
per-sample diagnostics to it); both must give the same losses, probabilities and
batch diagnostics, including on rows the fast path hands over. With several threads
the fast path must give the same bits as with one.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from app.core import (
    InvalidOption,
    InvalidValue,
    LossOptions,
    NonFiniteInput,
    _fast,
    score_cross_entropy,
)
from app.core._fast import FAST_BLOCK_BYTES
from app.core._validate import check_loss_options
from app.core.losses import _score_general

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


# Threads only matter on the blocked path (the small-batch path ignores them): these
# tests call it directly, with blocks of a few hundred bytes so that small batches
# span several.
def threaded(x, y, block_bytes, threads, **kw):
    with mock.patch.object(_fast, "FAST_BLOCK_BYTES", block_bytes):
        return _score_general(x, y, LossOptions(outputs=OUT, threads=threads, **kw))


def bits(a):
    a = np.asarray(a)
    return a.dtype, a.shape, a.tobytes()


@st.composite
def awkward_batches(draw):
    """Logits with rows that the fast path hands to the stable one, and labels."""
    n, c = draw(st.integers(2, 40)), draw(st.integers(2, 24))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c)) * draw(st.sampled_from([1.0, 10.0]))
    y = rng.integers(0, c, n)
    rows = rng.random(n)
    x[rows < 0.1, 0] = 1000.0  # exp overflows: stable path
    x[(rows >= 0.1) & (rows < 0.2)] -= 900.0  # exp underflows: stable path
    x[(rows >= 0.2) & (rows < 0.3), -1] = -np.inf  # a masked class: stable diagnostics
    ignored = (rows >= 0.3) & (rows < 0.4)
    x[ignored & (rng.random(n) < 0.5), 0] = np.nan  # ignored rows may hold anything
    x[ignored, -1] = np.inf
    y[ignored] = -100
    return x.astype(dtype), y


@settings(deadline=None, max_examples=40)
@given(
    awkward_batches(),
    st.sampled_from([2, 3]),
    st.sampled_from([64, 200, 1024]),
    st.sampled_from([1.0, 0.5, 3.0]),
    st.booleans(),
)
def test_threads_give_the_same_bits(xy, threads, block_bytes, temperature, diagnostics):
    x, y = xy
    # reduction="sum": every row may be ignored, which "mean" rejects.
    kw = dict(ignore_index=-100, temperature=temperature, diagnostics=diagnostics, reduction="sum")
    one = threaded(x, y, block_bytes, 1, **kw)
    many = threaded(x, y, block_bytes, threads, **kw)
    assert bits(many.loss) == bits(one.loss)
    assert bits(many.per_sample) == bits(one.per_sample)
    assert bits(many.probs) == bits(one.probs)
    assert many.total_weight == one.total_weight
    # Dataclass equality compares every field exactly (the means are floats, not arrays).
    assert many.diagnostics == one.diagnostics


def test_threads_on_blocks_of_every_size_match_the_stable_path():
    x = RNG.standard_normal((37, 11))
    x[5, 3] = 800.0  # overflows: handed over
    y = RNG.integers(0, 11, 37)
    fast = threaded(x, y, 8 * 11 * 4, 3)  # 10 blocks of 4 rows and one of 1
    stable = score_cross_entropy(
        x, y, LossOptions(outputs=OUT, per_sample_diagnostics=True, threads=3)
    )
    assert_same(fast, stable, 1e-12)


def test_the_pool_grows_and_names_its_threads():
    x, y = RNG.standard_normal((64, 8)), RNG.integers(0, 8, 64)
    ref = threaded(x, y, 256, 1)
    for threads in (2, 5, 3):  # 5 replaces the pool of 2; 3 reuses it
        assert bits(threaded(x, y, 256, threads).per_sample) == bits(ref.per_sample)
    assert any(t.name.startswith("scorer-core") for t in threading.enumerate())


def test_classic_value_with_threads():
    # log(1 + e^-1 + e^-2), to double precision.
    r = score_cross_entropy(np.array([[1.0, 2.0, 3.0]]), np.array([2]), LossOptions(threads=2))
    assert_allclose(r.loss, 0.40760596444438, rtol=1e-12)


@pytest.mark.parametrize(
    "threads",
    [
        pytest.param(0, id="zero"),
        pytest.param(-2, id="negative"),
        pytest.param(1.5, id="float"),
        pytest.param(2.0, id="integral-float"),
        pytest.param(True, id="bool"),
        pytest.param("2", id="str"),
    ],
)
def test_invalid_threads_are_rejected(threads):
    with pytest.raises(InvalidOption) as info:
        check_loss_options(LossOptions(threads=threads))
    assert info.value.loc == ("threads",)
    # A list is not an ndarray: the small-batch path declines it, so validation runs.
    with pytest.raises(InvalidOption) as info:
        score_cross_entropy([[1.0, 2.0, 3.0]], [2], LossOptions(threads=threads))
    assert info.value.loc == ("threads",)
    assert info.value.message == f"threads must be an integer >= 1; got {threads!r}"


def test_numpy_integer_threads_are_accepted():
    check_loss_options(LossOptions(threads=np.int64(2)))


def test_concurrent_callers_share_the_pool():
    # As in the server: requests scored at once in several threads, each asking for 2.
    x, y = RNG.standard_normal((200, 16)), RNG.integers(0, 16, 200)
    ref = bits(threaded(x, y, 512, 1).per_sample)
    with mock.patch.object(_fast, "FAST_BLOCK_BYTES", 512):
        opts = LossOptions(outputs=OUT, threads=2)
        with ThreadPoolExecutor(4) as callers:
            results = list(callers.map(lambda _: _score_general(x, y, opts), range(16)))
    assert all(bits(r.per_sample) == ref for r in results)
