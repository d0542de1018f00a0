"""The kernel's two forms agree, every block is computed once, threads change no bit.

The unshifted form takes a request for the loss and probabilities of index labels
(``diagnostics=False``); asking for ``log_probs`` and per-sample diagnostics takes the
shifted form. Both must give the same losses and probabilities, including on the rows
the unshifted form hands over, and the batch diagnostics must be the means of the
per-sample ones. With several threads the results must be the same bits as with one.
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
    _rows,
    score_cross_entropy,
)
from app.core._rows import BLOCK_BYTES
from app.core._validate import check_loss_options
from app.core.losses import _score_checked

RNG = np.random.default_rng(7)
PROBS = frozenset({"per_sample", "probs"})
LOSS = frozenset({"per_sample"})
OUT = frozenset({"per_sample", "probs"})


def both(x, y, **kw):
    kw.pop("diagnostics", None)
    fast = score_cross_entropy(x, y, LossOptions(outputs=OUT, diagnostics=False, **kw))
    shifted = LossOptions(outputs=OUT | {"log_probs"}, per_sample_diagnostics=True, **kw)
    return fast, score_cross_entropy(x, y, shifted)


def assert_same(fast, stable, rtol):
    assert_allclose(fast.per_sample, stable.per_sample, rtol=rtol, atol=0)
    assert_allclose(fast.probs, stable.probs, rtol=rtol, atol=1e-300)
    assert fast.total_weight == stable.total_weight
    if fast.loss is not None:
        assert_allclose(fast.loss, stable.loss, rtol=rtol)
    sd = stable.diagnostics
    ps = sd.per_sample
    scored = ps.true_class_rank >= 1
    assert sd.count == np.count_nonzero(scored)
    assert sd.accuracy == np.mean(ps.true_class_rank[scored] == 1)
    assert_array_equal(ps.predicted_class[scored] == stable.probs.argmax(-1)[scored], True)
    for name, per in (
        ("mean_confidence", ps.confidence),
        ("mean_true_class_prob", ps.true_class_prob),
        ("mean_entropy", ps.entropy),
    ):
        assert_allclose(getattr(sd, name), np.mean(per[scored], dtype=np.float64), rtol=1e-12)


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
    assert stable.diagnostics.numerical.underflow_rows == 1
    assert stable.diagnostics.numerical.zero_probs == 1
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
    n = 3 * BLOCK_BYTES // (c * 8) + 5
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
    with mock.patch.object(_rows, "BLOCK_BYTES", block_bytes):
        return _score_checked(x, y, LossOptions(outputs=OUT, threads=threads, **kw))


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
    with mock.patch.object(_rows, "BLOCK_BYTES", 512):
        opts = LossOptions(outputs=OUT, threads=2)
        with ThreadPoolExecutor(4) as callers:
            results = list(callers.map(lambda _: _score_checked(x, y, opts), range(16)))
    assert all(bits(r.per_sample) == ref for r in results)


@pytest.mark.parametrize(
    "outputs", [pytest.param(PROBS, id="probs"), pytest.param(LOSS, id="loss")]
)
@pytest.mark.parametrize("classes", [1000, 1001])  # the BLAS kernel's vector loop, and a tail
def test_threads_give_the_same_bits_on_full_blocks(classes, outputs):
    # Three blocks of 2 MiB: each is the same BLAS call whichever thread takes it.
    # (Diagnostics on: the shifted form; off: the unshifted one.)
    x = (RNG.standard_normal((1100, classes)) * 4).astype(np.float32)
    y = RNG.integers(0, classes, 1100)
    one = _score_checked(x, y, LossOptions(outputs=outputs, threads=1))
    two = _score_checked(x, y, LossOptions(outputs=outputs, threads=2))
    assert bits(two.per_sample) == bits(one.per_sample)
    if "probs" in outputs:
        assert bits(two.probs) == bits(one.probs)
    assert two.diagnostics == one.diagnostics


@pytest.mark.parametrize(
    "outputs", [pytest.param(PROBS, id="probs"), pytest.param(LOSS, id="loss")]
)
@pytest.mark.parametrize(
    "classes",
    [pytest.param(1000, id="blas-dot"), pytest.param(_rows._SMALL_ROWS + 500, id="einsum-dot")],
)
def test_float32_diagnostics_within_rounding_of_float64(classes, outputs):
    x = (RNG.standard_normal((600, classes)) * 4).astype(np.float32)
    y = RNG.integers(0, classes, 600)
    d = score_cross_entropy(x, y, LossOptions(outputs=outputs)).diagnostics
    ref = score_cross_entropy(x.astype(np.float64), y, LossOptions()).diagnostics
    assert d is not None
    assert ref is not None
    assert (d.count, d.accuracy, d.numerical) == (ref.count, ref.accuracy, ref.numerical)
    assert_allclose(d.mean_confidence, ref.mean_confidence, rtol=1e-5)
    assert_allclose(d.mean_true_class_prob, ref.mean_true_class_prob, rtol=1e-5)
    # s - sum p z: non-negative terms, relative error of a few float32 ulps.
    assert_allclose(d.mean_entropy, ref.mean_entropy, rtol=1e-5)


@pytest.mark.parametrize(
    "ignored", [pytest.param(False, id="all-fast"), pytest.param(True, id="nan-row")]
)
@pytest.mark.parametrize("sign", [pytest.param(1.0, id="max"), pytest.param(-1.0, id="min")])
def test_the_largest_logit_is_exact_whichever_its_sign(sign, ignored):
    # The maximum comes from the row maxima argmax picks, the minimum from a pass.
    x = RNG.standard_normal((1100, 1000)).astype(np.float32)
    y = RNG.integers(0, 1000, 1100)
    x[900, 17] = sign * 50.25
    if ignored:  # ignored rows that cannot be computed are not looked at
        x[950, 3] = np.nan
        x[951, 4] = np.inf
        y[[950, 951]] = -100
    d = score_cross_entropy(x, y, LossOptions(ignore_index=-100)).diagnostics
    assert d is not None
    assert d.numerical.max_abs_logit == 50.25
    assert d.count == 1100 - 2 * ignored


@pytest.mark.parametrize(
    "shape", [(64, 10), (7, 3), (32, 1000), (4096, 8)], ids=lambda s: "x".join(map(str, s))
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_probabilities_do_not_depend_on_diagnostics(shape, dtype):
    # Asking for diagnostics takes the shifted form: the same values within rounding.
    x = (RNG.standard_normal(shape) * 5).astype(dtype)
    y = RNG.integers(0, shape[1], shape[0])
    with_diag = score_cross_entropy(x, y, LossOptions(outputs=PROBS, diagnostics=True))
    without = score_cross_entropy(x, y, LossOptions(outputs=PROBS, diagnostics=False))
    rtol = 64 * float(np.finfo(dtype).eps)
    assert_allclose(with_diag.per_sample, without.per_sample, rtol=rtol)
    assert_allclose(with_diag.probs, without.probs, rtol=rtol * 20)
    assert_allclose(with_diag.loss_sum, without.loss_sum, rtol=rtol)
