"""Softmax cross-entropy against mpmath at 50 digits, on every path, over hard regimes.

The reference works on the exact binary values of the inputs as the service received
them (after the cast to the compute precision), so any difference is the service's own
rounding. Tolerances, relative, per compute precision: float64 64 eps (1.4e-14), float32
64 eps (7.6e-6); probabilities are compared only where the exact value is a normal
number of the precision (a subnormal result has lost digits whoever computes it), and
within that tolerance times ``|log p|``: exp turns the rounding of its argument into a
relative error, so that is softmax's own conditioning.

Each path is forced: one row takes the small path when its logits are bounded, the
same row repeated 300 times the blocked fast path, and asking for per-sample
diagnostics the stable path.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import LossOptions, score_cross_entropy

mpmath.mp.dps = 50
TOL = {dt: 64 * float(np.finfo(dt).eps) for dt in (np.float32, np.float64)}
OUT = frozenset({"per_sample", "probs"})
PATHS = {
    "single": {"rows": 1},
    "blocked": {"rows": 300},
    "stable": {"rows": 300, "per_sample_diagnostics": True},
}


def reference(x: np.ndarray, y: int) -> tuple[Any, list[Any]]:
    """-log p_y and p, at 50 digits, of one row of logits."""
    xs = [mpmath.mpf(float(v)) for v in x]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in xs))
    # log1p of the other terms relative to the label's: full relative precision however
    # small the loss (lse - x_y would keep 50 digits of lse, not of the difference).
    loss = mpmath.log1p(mpmath.fsum(mpmath.exp(v - xs[y]) for k, v in enumerate(xs) if k != y))
    return loss, [mpmath.exp(v - lse) for v in xs]


def check_row(x: list[float], y: int, dt: type[np.floating], path: str) -> None:
    row = np.array(x, dt)
    opts = dict(PATHS[path])
    rows = opts.pop("rows")
    result = score_cross_entropy(
        np.tile(row, (rows, 1)), np.full(rows, y), LossOptions(outputs=OUT, **opts)
    )
    loss, probs = reference(row, y)
    tol, tiny = TOL[dt], float(np.finfo(dt).tiny)
    assert result.per_sample is not None
    assert result.probs is not None
    got = result.per_sample.astype(np.float64)
    assert np.all(np.abs(got - float(loss)) <= tol * float(loss) + tiny), (x, y, dt, path, got[0])
    for k, exact in enumerate(probs):
        if exact >= tiny:
            p = result.probs[:, k].astype(np.float64)
            # exp(z) carries the absolute rounding of z = x_k - lse as a relative error:
            # softmax's own conditioning, |log p| times the working precision.
            bound = tol * float(exact) * max(1.0, -float(mpmath.log(exact)))
            assert np.all(np.abs(p - float(exact)) <= bound), (x, y, dt, path, k, p[0], exact)
    diagnostics = result.diagnostics
    assert diagnostics is not None
    assert diagnostics.mean_true_class_prob is not None
    true_prob = float(probs[y])
    if true_prob >= tiny:
        bound = tol * true_prob * max(1.0, -float(mpmath.log(probs[y])))
        assert abs(diagnostics.mean_true_class_prob - true_prob) <= bound, (x, y, dt, path)
    # A probability that is a normal number is never reported as 0.
    assert diagnostics.numerical.zero_probs <= rows * sum(float(p) < tiny for p in probs)


# Found wrong before: the fast path dropped the label's own term when exp(-x_y)
# overflowed (4 % at 2 classes), and took probabilities from subnormal exponentials
# (0 where the answer is 1.9e-22, 6e-6 off where it is 6.3e-16).
REGRESSIONS = [
    pytest.param([-88.8, -86.5], 0, np.float32, id="f32-exp-of-minus-label-overflows"),
    pytest.param([-710.0, -705.5], 0, np.float64, id="f64-exp-of-minus-label-overflows"),
    pytest.param([-60.0, -80.0, -95.0], 0, np.float32, id="f32-subnormal-exponential"),
    pytest.param([-60.0, -80.0, -110.0], 0, np.float32, id="f32-exponential-underflows"),
    pytest.param([-600.0, -650.0, -720.0], 0, np.float64, id="f64-subnormal-exponential"),
    pytest.param([-600.0, -650.0, -760.0], 0, np.float64, id="f64-exponential-underflows"),
    pytest.param([1.0, 2.0, 3.0], 2, np.float32, id="f32-classic"),
    pytest.param([1.0, 2.0, 3.0], 2, np.float64, id="f64-classic"),
]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("x", "y", "dt"), REGRESSIONS)
def test_named_regressions(x: list[float], y: int, dt: type[np.floating], path: str) -> None:
    check_row(x, y, dt, path)


# Offsets around both overflow thresholds (exp of +-88.7 in float32, +-709.8 in float64),
# far beyond them, and ordinary; spreads from ties to 1e4.
OFFSETS = [0.0, 30.0, -30.0, 88.0, 89.0, -87.0, -88.8, -104.0, 709.0, 710.0, -709.0, -745.0]
OFFSETS += [1e4, -1e4, 500.0, -500.0]


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[float], int, type[np.floating]]:
    dt = draw(st.sampled_from([np.float32, np.float64]))
    classes = draw(st.integers(2, 12))
    offset = draw(st.sampled_from(OFFSETS)) + draw(st.floats(-3, 3))
    spread = draw(st.sampled_from([0.0, 1e-6, 1.0, 10.0, 40.0, 100.0, 1e3, 1e4]))
    unit = draw(st.lists(st.floats(-1, 1), min_size=classes, max_size=classes))
    x = [offset + spread * u for u in unit]
    finite_max = float(np.finfo(dt).max)
    x = [min(max(v, -finite_max), finite_max) for v in x]
    return x, draw(st.integers(0, classes - 1)), dt


@settings(max_examples=150, deadline=None)
@given(row=rows(), path=st.sampled_from(list(PATHS)))
def test_every_path_agrees_with_the_reference(
    row: tuple[list[float], int, type[np.floating]], path: str
) -> None:
    x, y, dt = row
    check_row(x, y, dt, path)
