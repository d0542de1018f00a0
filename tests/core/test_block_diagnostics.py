"""Batch diagnostics of the fast block path and the small-batch path, at full size.

The fast path takes each block's row dot products ``sum_k p_k x_k`` through BLAS
(``np.vecdot``) below ``VECDOT_CLASSES`` classes and through einsum above, and its
largest logit from the row maxima that argmax picks. The small path shares its
probability code between the loss-only and diagnostic branches. Tolerances: the
entropy ``log T - sum_k p_k x_k`` may differ from float64 by a few ulps of the largest
logit (the dot product's rounding); everything else is exact or to 1e-5 in float32.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.core import LossOptions, score_cross_entropy
from app.core._block_diagnostics import VECDOT_CLASSES
from app.core._small import small_batch
from app.core.losses import _score_general

RNG = np.random.default_rng(23)
PROBS = frozenset({"per_sample", "probs"})
LOSS = frozenset({"per_sample"})
F32_EPS = float(np.finfo(np.float32).eps)


def bits(a):
    a = np.asarray(a)
    return a.dtype, a.shape, a.tobytes()


@pytest.mark.parametrize(
    "outputs", [pytest.param(PROBS, id="probs"), pytest.param(LOSS, id="loss")]
)
@pytest.mark.parametrize("classes", [1000, 1001])  # the BLAS kernel's vector loop, and a tail
def test_threads_give_the_same_bits_on_full_blocks(classes, outputs):
    # Three blocks of 2 MiB: each is the same BLAS call whichever thread takes it.
    x = (RNG.standard_normal((1100, classes)) * 4).astype(np.float32)
    y = RNG.integers(0, classes, 1100)
    one = _score_general(x, y, LossOptions(outputs=outputs, threads=1))
    two = _score_general(x, y, LossOptions(outputs=outputs, threads=2))
    assert bits(two.per_sample) == bits(one.per_sample)
    if "probs" in outputs:
        assert bits(two.probs) == bits(one.probs)
    assert two.diagnostics == one.diagnostics


@pytest.mark.parametrize(
    "outputs", [pytest.param(PROBS, id="probs"), pytest.param(LOSS, id="loss")]
)
@pytest.mark.parametrize(
    "classes",
    [pytest.param(1000, id="blas-dot"), pytest.param(VECDOT_CLASSES + 500, id="einsum-dot")],
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
    # Measured: 3e-7 through BLAS, 3e-6 through einsum; the bound is about 1e-5 here.
    atol = 4 * F32_EPS * d.numerical.max_abs_logit
    assert_allclose(d.mean_entropy, ref.mean_entropy, rtol=0, atol=atol)


@pytest.mark.parametrize(
    "ignored", [pytest.param(False, id="all-fast"), pytest.param(True, id="nan-row")]
)
@pytest.mark.parametrize("sign", [pytest.param(1.0, id="max"), pytest.param(-1.0, id="min")])
def test_the_largest_logit_is_exact_whichever_its_sign(sign, ignored):
    # The block maximum comes from the row maxima argmax picks, the minimum from a pass.
    x = RNG.standard_normal((1100, 1000)).astype(np.float32)
    y = RNG.integers(0, 1000, 1100)
    x[900, 17] = sign * 50.25
    if ignored:  # the block's plain max is NaN: its fast rows are looked at one by one
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
def test_small_batch_probabilities_do_not_depend_on_diagnostics(shape, dtype):
    x = (RNG.standard_normal(shape) * 5).astype(dtype)
    y = RNG.integers(0, shape[1], shape[0])
    with_diag = small_batch(x, y, LossOptions(outputs=PROBS, diagnostics=True))
    without = small_batch(x, y, LossOptions(outputs=PROBS, diagnostics=False))
    assert with_diag is not None
    assert without is not None
    assert bits(with_diag.per_sample) == bits(without.per_sample)
    assert bits(with_diag.probs) == bits(without.probs)
    assert_allclose(with_diag.loss_sum, without.loss_sum, rtol=1e-12)
