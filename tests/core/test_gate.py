"""Requests the gate admits skip the checks, and get the answer the checked path gives.

:func:`admit` takes a request whose types and options prove the input checks redundant
straight to the kernel; ``_score_checked`` checks everything first. Both run the same
kernel, so on every request -- admitted or not, valid or not -- the public function must
give the same bits, or raise the same error at the same place, as the checked path.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

from app.core import LossOptions, ScoringError, score_cross_entropy
from app.core._gate import admit
from app.core.losses import _score_checked
from app.core.results import PER_SAMPLE_FIELDS

RNG = np.random.default_rng(11)
PROBS = frozenset({"per_sample", "probs"})


def outcome(fn, x, y, opts):
    """The result of ``fn``, or the type, message and loc of the ScoringError it raised."""
    try:
        return fn(x, y, opts)
    except ScoringError as exc:
        return type(exc), str(exc), exc.loc


def assert_same_answer(x, y, opts):
    public = outcome(score_cross_entropy, x, y, opts)
    checked = outcome(_score_checked, x, y, opts)
    if isinstance(checked, tuple):
        assert public == checked
        return
    for name in ("loss", "loss_sum", "total_weight", "label_kind", "precision", "reduction"):
        assert getattr(public, name) == getattr(checked, name), name
    for name in ("per_sample", "probs", "log_probs"):
        got, want = getattr(public, name), getattr(checked, name)
        assert (got is None) == (want is None), name
        if want is not None:
            assert got.dtype == want.dtype
            assert_array_equal(got, want)
    pd, cd = public.diagnostics, checked.diagnostics
    assert (pd is None) == (cd is None)
    if cd is not None:
        assert replace(pd, per_sample=None) == replace(cd, per_sample=None)
        if cd.per_sample is not None:
            for name in PER_SAMPLE_FIELDS:
                assert_array_equal(getattr(pd.per_sample, name), getattr(cd.per_sample, name))


@st.composite
def requests(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    lead = draw(st.lists(st.integers(1, 6), min_size=1, max_size=2).map(tuple))
    c = draw(st.integers(2, 9))
    # Mostly ordinary logits, sometimes past the exponential's range.
    hi = draw(st.sampled_from([5.0, 30.0, 200.0, 1000.0]))
    floats = st.floats(-hi, hi, width=32 if dtype is np.float32 else 64)
    x = draw(arrays(dtype, (*lead, c), elements=floats))
    ydt = draw(st.sampled_from([np.int64, np.int32, np.uint8]))
    y = draw(arrays(ydt, lead, elements=st.integers(0, c - 1)))
    opts = LossOptions(
        reduction=draw(st.sampled_from(["mean", "sum", "none"])),
        outputs=draw(
            st.sampled_from([frozenset({"per_sample"}), PROBS, frozenset(), PROBS | {"log_probs"}])
        ),
        diagnostics=draw(st.booleans()),
        per_sample_diagnostics=draw(st.booleans()),
        ignore_index=draw(st.sampled_from([None, -100, c, 1000])),
        precision=draw(st.sampled_from([None, "float32" if dtype is np.float32 else "float64"])),
        axis=draw(st.sampled_from([-1, len(lead)])),
    )
    return x, y, opts


@given(requests())
def test_admitted_requests_get_the_checked_answer(request):
    x, y, opts = request
    assert admit(x, y, opts) is not None
    assert_same_answer(x, y, opts)


@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
)
@pytest.mark.parametrize(
    "diagnostics", [pytest.param(True, id="diag"), pytest.param(False, id="loss")]
)
def test_the_benchmark_batch_is_admitted(dtype, diagnostics):
    x = (RNG.standard_normal((64, 10)) * 3).astype(dtype)
    y = RNG.integers(0, 10, 64)
    opts = LossOptions(diagnostics=diagnostics, outputs=PROBS)
    assert admit(x, y, opts) == (np.dtype(dtype), np.dtype(np.uint64))
    assert_same_answer(x, y, opts)


def _batch(dtype=np.float64, n=5, c=4):
    return RNG.standard_normal((n, c)).astype(dtype), RNG.integers(0, c, n)


def _with(x, i, j, v):
    x = x.copy()
    x[i, j] = v
    return x


X, Y = _batch()
BIG = 1e300

# Hard or wrong requests, admitted or not: the same answer or error either way.
CASES = [
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


@pytest.mark.parametrize(("x", "y", "opts"), CASES)
def test_every_request_gets_the_checked_answer(x, y, opts):
    assert_same_answer(x, y, opts)


def test_non_finite_errors_keep_their_location():
    x = _with(X, 3, 2, np.nan)
    with pytest.raises(ScoringError) as info:
        score_cross_entropy(x, Y, LossOptions())
    assert info.value.loc == ("logits", 3, 2)


def test_inputs_are_not_modified():
    x, y = _batch(np.float32, 16, 6)
    x0, y0 = x.copy(), y.copy()
    for diagnostics in (True, False):
        score_cross_entropy(x, y, LossOptions(diagnostics=diagnostics, outputs=PROBS))
    assert_array_equal(x, x0)
    assert_array_equal(y, y0)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_an_invalid_thread_count_is_refused_for_a_small_batch_too(threads: object) -> None:
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([2])
    opts = replace(LossOptions(), threads=threads)
    assert admit(x, y, opts) is None
    with pytest.raises(ScoringError) as caught:
        score_cross_entropy(x, y, opts)
    assert caught.value.loc == ("threads",)
