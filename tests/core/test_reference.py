"""Every path of the core against mpmath at 50 digits, over the regimes that break softmax.

Paths (each forced by what it is asked): the plain small block (``plain``), the
unshifted form over blocks (``unshifted``), the shifted form (``shifted``: diagnostics
and log-probabilities), the fully checked path (``checked``: class weights of ones and
per-sample diagnostics), probability labels (``one-hot``), threads over several blocks
(``threads``) and ``score_softmax``. Inputs: float16, float32 and float64 with each
precision; offsets around both overflow thresholds and far beyond; spreads from ties to
1e4; subnormal logits; 2 to 50 257 classes. Tolerances: tests/reference.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import (
    InvalidOption,
    InvalidValue,
    LossOptions,
    SoftmaxOptions,
    score_binary_cross_entropy,
    score_cross_entropy,
    score_softmax,
)
from app.core.metrics.evaluate import evaluate_cross_entropy
from app.core.metrics.options import MetricOptions
from tests.reference import (
    TOL,
    assert_log_probs,
    assert_loss,
    assert_lse,
    assert_probability,
    assert_probs,
    entropy_bound,
    exact,
    tiny,
)

OUT = frozenset({"per_sample", "probs"})
ALL = frozenset({"per_sample", "probs", "log_probs"})
# name: (rows, options); every row of a batch is the same row.
PATHS: dict[str, tuple[int, LossOptions]] = {
    "plain": (1, LossOptions(outputs=OUT)),
    "unshifted": (300, LossOptions(outputs=OUT, diagnostics=False)),
    "shifted": (300, LossOptions(outputs=ALL)),
    "checked": (300, LossOptions(outputs=ALL, per_sample_diagnostics=True)),
    "one-hot": (300, LossOptions(outputs=ALL)),
    "threads": (3000, LossOptions(outputs=OUT, diagnostics=False, threads=2)),
}


def _compute_dtype(dtype: Any, precision: str | None) -> np.dtype[Any]:
    if precision is not None:
        return np.dtype(precision)
    return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)


_CACHE: dict[tuple[str, bytes], Any] = {}


def _exact(row: np.ndarray) -> Any:
    """:func:`exact`, once per row (the 50 257-class rows take seconds)."""
    key = (row.dtype.name, row.tobytes())
    if key not in _CACHE:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = exact(row)
    return _CACHE[key]


def check_row(x: list[float], y: int, dtype: Any, precision: str | None, path: str) -> None:
    """Every output of ``path`` for the row ``x`` (label ``y``) against the exact answer."""
    row = np.array(x, dtype)
    dt = _compute_dtype(dtype, precision)
    ref = _exact(row.astype(dt))  # the values the service computes with
    rows, opts = PATHS[path]
    opts = replace(opts, precision=precision)  # type: ignore[arg-type]
    c = len(x)
    if path == "checked":
        opts = replace(opts, class_weights=np.ones(c))
    if rows * c > 2_000_000:
        rows = max(1, 2_000_000 // c)
    batch = np.tile(row, (rows, 1))
    labels: Any = np.full(rows, y)
    if path == "one-hot":
        labels = np.zeros((rows, c))
        labels[:, y] = 1.0
    result = score_cross_entropy(batch, labels, opts)
    where = (x[:4], y, np.dtype(dtype).name, precision, path)
    assert result.per_sample.dtype == dt
    for got in result.per_sample[:: max(1, rows // 7)]:
        assert_loss(float(got), ref, y, dt, where)
    assert result.probs is not None
    for got_row in result.probs[:: max(1, rows // 3)]:
        assert_probs(got_row, ref, dt, where)
    if result.log_probs is not None:
        assert_log_probs(result.log_probs[0], ref, dt, where)
    d = result.diagnostics
    if d is None:
        return
    assert d.count == rows
    assert d.mean_true_class_prob is not None
    assert d.mean_confidence is not None
    assert d.mean_entropy is not None
    assert_probability(d.mean_true_class_prob, ref.probs[y], dt, where)
    assert_probability(d.mean_confidence, ref.confidence, dt, where)
    assert abs(d.mean_entropy - float(ref.entropy)) <= entropy_bound(ref, dt), (where, d)
    # argmax breaks ties to the lowest index, as accuracy and rank do.
    first_max = max(range(c), key=lambda k: (ref.x[k], -k))
    assert d.accuracy == (1.0 if first_max == y else 0.0), where
    assert d.numerical.zero_probs <= rows * sum(p < tiny(dt) for p in ref.probs), where
    if d.per_sample is not None:
        assert d.per_sample.predicted_class[0] == first_max
        assert (d.per_sample.true_class_rank[0] == 1) == (first_max == y)


# Found wrong before (each a named regression): the label's own term dropped when
# exp(-x_y) overflowed; probabilities from subnormal exponentials; the entropy of a
# confident row lost to cancellation (0.0 where it is 2.6e-11); a tie ranked apart
# from argmax.
REGRESSIONS = [
    pytest.param([-88.8, -86.5], 0, np.float32, id="f32-exp-of-minus-label-overflows"),
    pytest.param([-710.0, -705.5], 0, np.float64, id="f64-exp-of-minus-label-overflows"),
    pytest.param([-60.0, -80.0, -95.0], 0, np.float32, id="f32-subnormal-exponential"),
    pytest.param([-60.0, -80.0, -110.0], 0, np.float32, id="f32-exponential-underflows"),
    pytest.param([-600.0, -650.0, -720.0], 0, np.float64, id="f64-subnormal-exponential"),
    pytest.param([-600.0, -650.0, -760.0], 0, np.float64, id="f64-exponential-underflows"),
    pytest.param([30.0, 0.0, 0.0], 0, np.float64, id="f64-confident-entropy"),
    pytest.param([20.0, 0.0, 0.0], 0, np.float32, id="f32-confident-entropy"),
    pytest.param([1.0, 1.0, 0.0], 1, np.float32, id="tied-true-class"),
    pytest.param([5.0, 5.0, 5.0, 5.0], 3, np.float64, id="all-tied"),
    pytest.param([1e-310, 0.0, -1e-310], 0, np.float64, id="f64-subnormal-logits"),
    pytest.param([1e-40, 0.0, -1e-40], 2, np.float32, id="f32-subnormal-logits"),
    pytest.param([3e38, 1e38, 0.0], 0, np.float32, id="f32-near-max"),
    pytest.param([88.5, 88.5], 0, np.float32, id="f32-sum-of-exps-overflows"),
    pytest.param([709.5, 709.5], 1, np.float64, id="f64-sum-of-exps-overflows"),
    pytest.param([-503.32201683821705, -131.69463352958084], 1, np.float64, id="f64-wide-gap"),
    pytest.param([1.0, 2.0, 3.0], 2, np.float32, id="f32-classic"),
    pytest.param([1.0, 2.0, 3.0], 2, np.float64, id="f64-classic"),
]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("x", "y", "dtype"), REGRESSIONS)
def test_named_regressions(x: list[float], y: int, dtype: Any, path: str) -> None:
    check_row(x, y, dtype, None, path)


# Offsets around both overflow thresholds (exp of +-88.7 in float32, +-709.8 in float64),
# far beyond them, and ordinary; spreads from ties to 1e4.
OFFSETS = [0.0, 30.0, -30.0, 88.0, 89.0, -87.0, -88.8, -104.0, 709.0, 710.0, -709.0, -745.0]
OFFSETS += [1e4, -1e4, 500.0, -500.0]
SPREADS = [0.0, 1e-6, 1.0, 10.0, 40.0, 100.0, 1e3, 1e4]
DTYPES = [np.float16, np.float32, np.float64]


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[float], int, Any, str | None]:
    dtype = draw(st.sampled_from(DTYPES))
    precision = draw(st.sampled_from([None, "float32", "float64"]))
    classes = draw(st.sampled_from([2, 3, 5, 10, 64, 300]))
    offset = draw(st.sampled_from(OFFSETS)) + draw(st.floats(-3, 3))
    spread = draw(st.sampled_from(SPREADS))
    unit = draw(st.lists(st.floats(-1, 1), min_size=classes, max_size=classes))
    if draw(st.booleans()):  # a tie for the maximum
        unit[draw(st.integers(0, classes - 1))] = max(unit)
    top = float(np.finfo(np.float32 if precision == "float32" else dtype).max)
    x = [min(max(offset + spread * u, -top), top) for u in unit]
    return x, draw(st.integers(0, classes - 1)), dtype, precision


@settings(max_examples=120, deadline=None)
@given(row=rows(), path=st.sampled_from(list(PATHS)))
def test_every_path_agrees_with_the_reference(
    row: tuple[list[float], int, Any, str | None], path: str
) -> None:
    x, y, dtype, precision = row
    check_row(x, y, dtype, precision, path)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(
    ("x", "dtype"),
    [
        pytest.param([3e38, -3e38, 0.0], np.float32, id="f32"),
        pytest.param([1.7e308, -1.7e308, 0.0], np.float64, id="f64"),
    ],
)
def test_a_row_spanning_more_than_the_precision_is_refused(
    x: list[float], dtype: Any, path: str
) -> None:
    # z = x - m would overflow to -inf: a loss or log-probability that is not its value.
    rows, opts = PATHS[path]
    labels: Any = np.zeros(rows, int)
    if path == "one-hot":
        labels = np.tile([1.0, 0.0, 0.0], (rows, 1))
    with pytest.raises(InvalidValue, match="spans") as info:
        score_cross_entropy(np.tile(np.array(x, dtype), (rows, 1)), labels, opts)
    assert info.value.loc == ("logits", 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["plain", "unshifted", "shifted", "checked"])
def test_a_vocabulary_of_50257_classes(dtype: Any, path: str) -> None:
    rng = np.random.default_rng(50257)
    x = (rng.standard_normal(50257) * 8).tolist()
    x[123] = 40.0  # a confident row: the others' terms are small
    check_row(x, 123, dtype, None, path)
    check_row(x, 7, dtype, None, path)


@st.composite
def softmax_rows(draw: st.DrawFn) -> tuple[list[float], Any]:
    x, _, dtype, _ = draw(rows())
    return x, dtype


@settings(max_examples=60, deadline=None)
@given(row=softmax_rows(), temperature=st.sampled_from([1.0, 0.5, 3.0]))
def test_softmax_agrees_with_the_reference(
    row: tuple[list[float], Any], temperature: float
) -> None:
    x, dtype = row
    logits = np.array(x, dtype)
    opts = SoftmaxOptions(
        temperature=temperature, outputs=frozenset({"probs", "log_probs", "logsumexp"})
    )
    big = float(np.finfo(_compute_dtype(dtype, None)).max)
    if (np.abs(logits.astype(np.float64)) / temperature > big).any():
        with pytest.raises(InvalidOption, match="temperature"):  # refused, never inf
            score_softmax(np.tile(logits, (5, 1)), opts)
        return
    result = score_softmax(np.tile(logits, (5, 1)), opts)
    dt = np.dtype(result.precision)
    xl = logits.astype(dt)
    if temperature != 1.0:
        xl = xl / dt.type(temperature)
    ref = exact(xl)
    assert result.probs is not None
    assert result.log_probs is not None
    assert result.logsumexp is not None
    assert_probs(result.probs[0], ref, dt, x[:4])
    assert_log_probs(result.log_probs[0], ref, dt, x[:4])
    assert_lse(float(result.logsumexp[0]), ref, dt, x[:4])
    d = result.diagnostics
    assert d is not None
    assert d.mean_entropy is not None
    assert abs(d.mean_entropy - float(ref.entropy)) <= entropy_bound(ref, dt)


# Weights up to float64's maximum: sum(w l) / sum(w) is finite although the sums are not.
@pytest.mark.parametrize(
    ("class_weights", "sample_weights"),
    [
        pytest.param([1.7e308, 1.7e308, 1.7e308], None, id="class-weights-at-max"),
        pytest.param(None, [1.0e308, 1.5e308, 1.7e308, 1.2e308], id="sample-weights-at-max"),
        pytest.param([1.7e308, 1.0, 1e-300], [1e300, 1e308, 1.0, 1e200], id="both-mixed"),
    ],
)
def test_weights_up_to_the_float_maximum(
    class_weights: list[float] | None, sample_weights: list[float] | None
) -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [3.0, 3.0, -2.0], [0.0, 1.0, 0.0]])
    y = np.array([2, 0, 1, 1])
    opts = LossOptions(
        class_weights=None if class_weights is None else np.array(class_weights),
        sample_weights=None if sample_weights is None else np.array(sample_weights),
    )
    result = score_cross_entropy(x, y, opts)
    num = den = mpmath.mpf(0)
    for row, label, i in zip(x, y, range(4), strict=True):
        w = mpmath.mpf(1)
        if class_weights is not None:
            w *= mpmath.mpf(class_weights[label])
        if sample_weights is not None:
            w *= mpmath.mpf(sample_weights[i])
        num += w * exact(row).loss(int(label))
        den += w
    assert result.loss is not None
    assert np.isfinite(result.loss)
    assert abs(result.loss - float(num / den)) <= TOL[np.dtype(np.float64)] * float(num / den)
    # Probability labels: the class weights are in the losses, not in the total weight.
    onehot = np.eye(3)[y]
    result = score_cross_entropy(x, onehot, opts)
    num = den = mpmath.mpf(0)
    for row, label, i in zip(x, y, range(4), strict=True):
        sample = mpmath.mpf(1) if sample_weights is None else mpmath.mpf(sample_weights[i])
        cls = mpmath.mpf(1) if class_weights is None else mpmath.mpf(class_weights[label])
        num += sample * cls * exact(row).loss(int(label))
        den += sample
    want = num / den
    assert result.loss is not None
    if want < float(np.finfo(np.float64).max):
        assert abs(result.loss - float(want)) <= TOL[np.dtype(np.float64)] * float(want)
    else:
        assert result.loss == np.inf  # the mean itself is past the range


@pytest.mark.parametrize(
    "sample_weights", [[1.7e308, 1.7e308, 1.0e308, 1.5e308], [1.0, 1e308, 1e-300, 1.7e308]]
)
def test_binary_weights_up_to_the_float_maximum(sample_weights: list[float]) -> None:
    x = np.array([0.5, -1.0, 3.0, -0.25])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    opts = LossOptions(sample_weights=np.array(sample_weights))
    result = score_binary_cross_entropy(x, y, opts)
    num = den = mpmath.mpf(0)
    for xi, yi, w in zip(x, y, sample_weights, strict=True):
        t = mpmath.mpf(float(xi))
        # -(y log s + (1 - y) log(1 - s)), s = sigmoid(t)
        nll = mpmath.log1p(mpmath.exp(-t)) if yi == 1 else mpmath.log1p(mpmath.exp(t))
        num += mpmath.mpf(w) * nll
        den += mpmath.mpf(w)
    assert result.loss is not None
    assert abs(result.loss - float(num / den)) <= TOL[np.dtype(np.float64)] * float(num / den)


# Calibration: a confidence exactly on a bin edge falls in the bin it opens. With C equal
# logits the confidence is exactly 1/C; in float32 exp(log(1/C)) was not, and moved a
# whole bin.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("classes", "bins"), [(2, 10), (5, 10), (10, 10), (4, 20), (8, 16)])
def test_confidences_on_bin_edges(dtype: Any, classes: int, bins: int) -> None:
    rng = np.random.default_rng(classes * bins)
    tied = np.zeros((40, classes), dtype)
    other = (rng.standard_normal((40, classes)) * 2).astype(dtype)
    x = np.concatenate([tied, other])
    y = rng.integers(0, classes, 80)
    ev = evaluate_cross_entropy(x, y, LossOptions(), MetricOptions(calibration_bins=bins))
    # Exact: the confidence of each row at 50 digits, binned on exact edges b / bins.
    count, conf_sum, hits = [0] * bins, [mpmath.mpf(0)] * bins, [0] * bins
    for row, label in zip(x, y, strict=True):
        ref = exact(row)
        conf = ref.confidence
        # exp(-log C) at 50 digits is 1/C to 49 of them: on the edge, within 1e-40.
        b = min(int(mpmath.floor(conf * bins + mpmath.mpf(10) ** -40)), bins - 1)
        first_max = max(range(classes), key=lambda k: (ref.x[k], -k))
        count[b] += 1
        conf_sum[b] += conf
        hits[b] += int(first_max == label)
    ece = float(mpmath.fsum(abs(h - s) for h, s in zip(hits, conf_sum, strict=True)) / len(y))
    cal = ev.metrics["calibration"]
    assert [r["count"] for r in cal["reliability"]] == count
    assert abs(cal["ece"] - ece) <= 1e-6


@st.composite
def near_ties(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    classes = draw(st.integers(2, 6))
    n = draw(st.integers(1, 30))
    eps = float(np.finfo(dtype).eps)
    values = st.sampled_from([0.0, 1.0, 1.0 + eps, 1.0 - eps / 2, 30.0, 30.0 + 4 * eps * 30])
    x = np.array(
        draw(
            st.lists(st.lists(values, min_size=classes, max_size=classes), min_size=n, max_size=n)
        ),
        dtype,
    )
    y = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    return x, y


@settings(max_examples=100, deadline=None)
@given(batch=near_ties())
def test_top1_confusion_and_accuracy_are_one_answer(batch: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = batch
    c = x.shape[1]
    metrics = MetricOptions(top_k=(1, c), confusion=True)
    ev = evaluate_cross_entropy(x, y, LossOptions(per_sample_diagnostics=True), metrics)
    d = ev.result.diagnostics
    assert d is not None
    assert d.per_sample is not None
    accuracy = d.accuracy
    assert ev.metrics["top_k"][0]["accuracy"] == accuracy
    assert ev.metrics["top_k"][1]["accuracy"] == 1.0
    confusion = np.array(ev.metrics["confusion"])
    assert np.trace(confusion) / len(y) == accuracy
    assert np.array_equal(d.per_sample.true_class_rank == 1, d.per_sample.predicted_class == y)
    assert np.array_equal(d.per_sample.predicted_class, np.argmax(x, axis=1))


# Found by an adversarial review: weights whose products vanish or overflow, a zero class
# weight on a masked label, ignored rows that the checks looked at.
@pytest.mark.parametrize(
    ("dtype", "class_weights", "sample_weights", "labels"),
    [
        pytest.param(np.float32, [1e-45] * 3, None, [2, 0], id="f32-subnormal-class-weights"),
        pytest.param(np.float64, [1e-320] * 3, None, [2, 0], id="f64-subnormal-class-weights"),
        pytest.param(np.float64, [1e300, 1e300, 1e-300], None, [2, 2], id="unused-huge-weights"),
        pytest.param(np.float64, [1e-200] * 3, [1e-200] * 2, [2, 0], id="products-vanish"),
    ],
)
def test_weights_whose_products_vanish(
    dtype: Any, class_weights: list[float], sample_weights: list[float] | None, labels: list[int]
) -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], dtype)
    y = np.array(labels)
    opts = LossOptions(
        class_weights=np.array(class_weights),
        sample_weights=None if sample_weights is None else np.array(sample_weights),
    )
    result = score_cross_entropy(x, y, opts)
    num = den = mpmath.mpf(0)
    for i, (row, label) in enumerate(zip(x, y, strict=True)):
        w = mpmath.mpf(class_weights[label])
        if sample_weights is not None:
            w *= mpmath.mpf(sample_weights[i])
        num += w * exact(row).loss(int(label))
        den += w
    assert result.loss is not None
    assert abs(result.loss - float(num / den)) <= TOL[np.dtype(dtype)] * float(num / den)


def test_losses_whose_sum_overflows_have_a_mean() -> None:
    x = np.array([[0.0, -1e308], [0.0, -1e308]])
    result = score_cross_entropy(x, np.array([1, 1]), LossOptions())
    assert result.loss == 1e308
    weighted = score_cross_entropy(
        x[:1] * 1e-8, np.array([1]), LossOptions(sample_weights=np.array([1e10]))
    )
    assert weighted.loss == pytest.approx(1e300, rel=1e-15)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_zero_weight_on_a_masked_label_is_no_nan(smoothing: float) -> None:
    x = np.array([[-np.inf, 2.0, 1.0], [0.0, 1.0, 2.0]])
    opts = LossOptions(class_weights=np.array([0.0, 1.0, 1.0]), label_smoothing=smoothing)
    result = score_cross_entropy(x, np.array([0, 2]), opts)
    assert np.isfinite(result.per_sample).all()
    if smoothing == 0:
        assert result.per_sample[0] == 0
        assert result.loss == pytest.approx(float(exact(x[1]).loss(2)), rel=1e-15)
    full = score_cross_entropy(x, np.array([0, 2]), LossOptions(label_smoothing=1.0))
    assert full.per_sample[0] == np.inf  # the masked class has 1/C of the target


@pytest.mark.parametrize("diagnostics", [True, False])
def test_ignored_rows_are_not_checked(diagnostics: bool) -> None:
    # Cast to float32, or divided by the temperature, the ignored row overflows: it is an
    # unusable ignored row (NaN outputs), not an error, and changes nothing else.
    out = frozenset({"per_sample", "probs"})
    y = np.array([-100, 1])
    for x, opts in (
        (np.array([[1e300, 0.0], [1.0, 2.0]]), LossOptions(precision="float32")),
        (np.array([[3e38, 0.0], [1.0, 2.0]], np.float32), LossOptions(temperature=0.3)),
    ):
        opts = replace(opts, ignore_index=-100, outputs=out, diagnostics=diagnostics)
        result = score_cross_entropy(x, y, opts)
        alone = score_cross_entropy(x[1:], y[1:], replace(opts, ignore_index=None))
        assert result.probs is not None
        assert np.isnan(result.probs[0]).all()
        assert result.loss == alone.loss
        assert result.diagnostics == alone.diagnostics
