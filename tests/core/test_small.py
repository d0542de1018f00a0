"""The small-batch path agrees with the general path, and declines what it cannot take.

``small_batch`` answers the common request (logits, class indices, no weights) for
batches of up to ``SMALL_ELEMENTS`` logits; ``_score_general`` is the blocked path that
answers everything else. On the common request both must give the same losses,
probabilities and diagnostics; on anything else the small path must return None, so
that ``score_cross_entropy`` answers (or raises) exactly as the general path does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from app.core import LossOptions, ScoringError, score_cross_entropy
from app.core._small import SMALL_ELEMENTS, small_batch
from app.core._small_gate import BOUND as _BOUND
from app.core.losses import _score_general
from app.core.results import PER_SAMPLE_FIELDS

RNG = np.random.default_rng(11)
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
PROBS = frozenset({"per_sample", "probs"})


def assert_same(small, general, dtype):
    """Same results up to rounding: sums are taken in another order (BLAS vs einsum)."""
    rtol = RTOL[dtype]
    assert small.per_sample.dtype == general.per_sample.dtype
    assert small.per_sample.shape == general.per_sample.shape
    assert_allclose(small.per_sample, general.per_sample, rtol=rtol, atol=0)
    assert_allclose(small.loss_sum, general.loss_sum, rtol=rtol)
    if general.loss is None:
        assert small.loss is None
    else:
        assert_allclose(small.loss, general.loss, rtol=rtol)
    assert small.total_weight == general.total_weight
    assert (small.label_kind, small.precision, small.reduction) == (
        general.label_kind,
        general.precision,
        general.reduction,
    )
    assert small.log_probs is None
    assert general.log_probs is None
    if general.probs is None:
        assert small.probs is None
    else:
        assert small.probs.shape == general.probs.shape
        assert small.probs.dtype == general.probs.dtype
        assert_allclose(small.probs, general.probs, rtol=rtol, atol=0)
    sd, gd = small.diagnostics, general.diagnostics
    if gd is None:
        assert sd is None
        return
    assert sd is not None
    assert (sd.count, sd.accuracy, sd.per_sample) == (gd.count, gd.accuracy, gd.per_sample)
    assert sd.numerical == gd.numerical
    assert_allclose(sd.mean_confidence, gd.mean_confidence, rtol=rtol)
    assert_allclose(sd.mean_true_class_prob, gd.mean_true_class_prob, rtol=rtol)
    # log T - sum p x cancels: absolute error of a few ulps of the largest logit.
    atol = 16 * float(np.finfo(dtype).eps) * max(1.0, sd.numerical.max_abs_logit)
    assert_allclose(sd.mean_entropy, gd.mean_entropy, rtol=rtol, atol=atol)


def both(x, y, opts):
    small = small_batch(x, y, opts)
    assert small is not None, "the small path declined a batch it should take"
    public = score_cross_entropy(x, y, opts)
    assert public.per_sample is not small.per_sample
    assert_array_equal(public.per_sample, small.per_sample)  # it is the path taken
    return small, _score_general(x, y, opts)


@st.composite
def requests(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    lead = draw(st.lists(st.integers(1, 6), min_size=1, max_size=2).map(tuple))
    c = draw(st.integers(2, 9))
    bound = _BOUND[np.dtype(dtype)]
    # Mostly ordinary logits, sometimes up to the bound of the small path.
    hi = draw(st.sampled_from([5.0, 30.0, bound]))
    if dtype is np.float32:  # the largest float32 <= hi
        h32 = np.float32(hi)
        hi = float(np.nextafter(h32, np.float32(0)) if float(h32) > hi else h32)
    floats = st.floats(-hi, hi, width=32 if dtype is np.float32 else 64)
    x = draw(arrays(dtype, (*lead, c), elements=floats))
    ydt = draw(st.sampled_from([np.int64, np.int32, np.uint8]))
    y = draw(arrays(ydt, lead, elements=st.integers(0, c - 1)))
    opts = LossOptions(
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        outputs=draw(st.sampled_from([frozenset({"per_sample"}), PROBS, frozenset()])),
        diagnostics=draw(st.booleans()),
        ignore_index=draw(st.sampled_from([None, -100, c, 1000])),
        precision=draw(st.sampled_from([None, "float32" if dtype is np.float32 else "float64"])),
        axis=draw(st.sampled_from([-1, len(lead)])),
    )
    return x, y, opts


@given(requests())
def test_small_path_matches_the_general_path(request):
    x, y, opts = request
    assert_same(*both(x, y, opts), x.dtype.type)


@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
)
@pytest.mark.parametrize(
    "diagnostics", [pytest.param(True, id="diag"), pytest.param(False, id="loss")]
)
def test_the_benchmark_batch(dtype, diagnostics):
    x = (RNG.standard_normal((64, 10)) * 3).astype(dtype)
    y = RNG.integers(0, 10, 64)
    opts = LossOptions(diagnostics=diagnostics, outputs=PROBS)
    assert_same(*both(x, y, opts), dtype)


def test_the_largest_small_batch_and_one_more():
    c = 8
    n = SMALL_ELEMENTS // c
    x = RNG.standard_normal((n, c))
    y = RNG.integers(0, c, n)
    assert_same(*both(x, y, LossOptions()), np.float64)
    x, y = RNG.standard_normal((n + 1, c)), RNG.integers(0, c, n + 1)
    assert small_batch(x, y, LossOptions()) is None


def test_small_losses_keep_their_relative_precision():
    x = np.array([[40.0, 0.0, 0.0], [0.0, 30.0, -5.0]])
    small, _ = both(x, np.array([0, 1]), LossOptions())
    expected = np.log1p([2 * np.exp(-40.0), np.exp(-30.0) + np.exp(-35.0)])
    assert_allclose(small.per_sample, expected, rtol=1e-14)


def test_logits_at_the_bound_are_taken():
    for dtype in (np.float32, np.float64):
        b = dtype(_BOUND[np.dtype(dtype)])
        b = np.nextafter(b, dtype(0)) if float(b) > _BOUND[np.dtype(dtype)] else b
        x = np.array([[b, -b, 0.0], [-b, b, -b]], dtype)
        assert_same(*both(x, np.array([1, 0]), LossOptions(outputs=PROBS)), dtype)


def _batch(dtype=np.float64, n=5, c=4):
    return RNG.standard_normal((n, c)).astype(dtype), RNG.integers(0, c, n)


def _with(x, i, j, v):
    x = x.copy()
    x[i, j] = v
    return x


X, Y = _batch()
BIG = 2 * _BOUND[np.dtype(np.float64)]

# (predictions, labels, options) the small path must leave to the general path.
DECLINED = [
    pytest.param(_with(X, 2, 1, np.nan), Y, LossOptions(), id="nan"),
    pytest.param(_with(X, 3, 0, np.inf), Y, LossOptions(), id="plus-inf"),
    pytest.param(_with(X, 1, 3, -np.inf), Y, LossOptions(), id="masked-class"),
    pytest.param(_with(X, 1, int(Y[1]), -np.inf), Y, LossOptions(), id="label-minus-inf"),
    pytest.param(
        np.where(np.arange(5)[:, None] == 2, -np.inf, X), Y, LossOptions(), id="all-minus-inf-row"
    ),
    pytest.param(_with(X, 0, 0, BIG), Y, LossOptions(), id="beyond-the-bound"),
    pytest.param(_with(X, 0, 0, -BIG), Y, LossOptions(), id="beyond-minus-bound"),
    pytest.param(X * 300, Y, LossOptions(), id="overflowing-rows"),
    pytest.param(_with(X.astype(np.float32), 0, 1, 60.0), Y, LossOptions(), id="f32-bound"),
    pytest.param(X, np.where(np.arange(5) == 3, 4, Y), LossOptions(), id="label-too-large"),
    pytest.param(X, np.where(np.arange(5) == 3, -1, Y), LossOptions(), id="label-negative"),
    pytest.param(
        X, np.where(np.arange(5) == 1, -100, Y), LossOptions(ignore_index=-100), id="ignored-label"
    ),
    pytest.param(X, Y, LossOptions(ignore_index=int(Y[0])), id="ignore-index-a-class"),
    pytest.param(X, Y, LossOptions(ignore_index=True), id="ignore-index-bool"),
    pytest.param(X, Y.astype(float), LossOptions(), id="float-labels"),
    pytest.param(X, Y.astype(bool), LossOptions(), id="bool-labels"),
    pytest.param(X, Y.astype(">i8"), LossOptions(), id="big-endian-labels"),
    pytest.param(X, Y.tolist(), LossOptions(), id="label-list"),
    pytest.param(X.tolist(), Y, LossOptions(), id="logit-list"),
    pytest.param(X, np.eye(4)[Y], LossOptions(), id="probability-labels"),
    pytest.param(X, Y[:4], LossOptions(), id="label-shape"),
    pytest.param(X[:, :1], np.zeros(5, int), LossOptions(), id="one-class"),
    pytest.param(X[:0], Y[:0], LossOptions(), id="empty"),
    pytest.param(X.astype(np.float16), Y, LossOptions(), id="float16"),
    pytest.param(np.round(X * 3).astype(np.int64), Y, LossOptions(), id="integer-logits"),
    pytest.param(X, Y, LossOptions(precision="float32"), id="precision-mismatch"),
    pytest.param(np.asfortranarray(X), Y, LossOptions(), id="fortran-order"),
    pytest.param(RNG.standard_normal((5, 8))[:, ::2], Y, LossOptions(), id="strided"),
    pytest.param(X.T, Y, LossOptions(axis=0), id="class-axis-first"),
    pytest.param(X, Y, LossOptions(axis=True), id="axis-bool"),
    pytest.param(X, Y, LossOptions(class_weights=np.ones(4)), id="class-weights"),
    pytest.param(X, Y, LossOptions(sample_weights=np.ones(5)), id="sample-weights"),
    pytest.param(X, Y, LossOptions(pos_weight=1.0), id="pos-weight"),
    pytest.param(X, Y, LossOptions(label_smoothing=0.1), id="smoothing"),
    pytest.param(X, Y, LossOptions(label_smoothing=False), id="smoothing-bool"),
    pytest.param(X, Y, LossOptions(temperature=2.0), id="temperature"),
    pytest.param(X, Y, LossOptions(temperature=True), id="temperature-bool"),
    pytest.param(X, Y, LossOptions(input_kind="log_probs"), id="log-probs-input"),
    pytest.param(X, Y, LossOptions(outputs=frozenset({"log_probs"})), id="log-probs-output"),
    pytest.param(X, Y, LossOptions(outputs=["per_sample"]), id="outputs-list"),
    pytest.param(X, Y, LossOptions(outputs=frozenset({"nope"})), id="unknown-output"),
    pytest.param(X, Y, LossOptions(reduction="avg"), id="bad-reduction"),
    pytest.param(X, Y, LossOptions(per_sample_diagnostics=True), id="per-sample-diagnostics"),
]


def outcome(fn, x, y, opts):
    """The result of ``fn``, or the type, message and loc of the ScoringError it raised."""
    try:
        return fn(x, y, opts)
    except ScoringError as exc:
        return type(exc), str(exc), exc.loc


@pytest.mark.parametrize(("x", "y", "opts"), DECLINED)
def test_declined_requests_get_the_general_answer(x, y, opts):
    assert small_batch(x, y, opts) is None
    public = outcome(score_cross_entropy, x, y, opts)
    general = outcome(_score_general, x, y, opts)
    if isinstance(general, tuple):
        assert public == general
        return
    assert_array_equal(public.per_sample, general.per_sample)
    assert_array_equal(public.loss, general.loss)
    pd, gd = public.diagnostics, general.diagnostics
    assert replace(pd, per_sample=None) == replace(gd, per_sample=None)
    if gd.per_sample is not None:
        for name in PER_SAMPLE_FIELDS:
            assert_array_equal(getattr(pd.per_sample, name), getattr(gd.per_sample, name))


def test_non_finite_errors_keep_their_location():
    x = _with(X, 3, 2, np.nan)
    with pytest.raises(ScoringError) as info:
        score_cross_entropy(x, Y, LossOptions())
    assert info.value.loc == ("logits", 3, 2)


def test_inputs_are_not_modified():
    x, y = _batch(np.float32, 16, 6)
    x0, y0 = x.copy(), y.copy()
    for diagnostics in (True, False):
        assert small_batch(x, y, LossOptions(diagnostics=diagnostics, outputs=PROBS)) is not None
    assert_array_equal(x, x0)
    assert_array_equal(y, y0)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_an_invalid_thread_count_is_refused_for_a_small_batch_too(threads: object) -> None:
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([2])
    opts = replace(LossOptions(), threads=threads)
    assert small_batch(x, y, opts) is None
    with pytest.raises(ScoringError) as caught:
        score_cross_entropy(x, y, opts)
    assert caught.value.loc == ("threads",)
