"""Per-sequence and token-level NLL and perplexity against float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from app.core import InvalidOption, LossOptions
from app.core.metrics import MetricOptions, evaluate_cross_entropy

SEQ = MetricOptions(sequences=True)


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(5, 9, 11))
    labels = rng.integers(0, 11, size=(5, 9))
    lengths = np.array([9, 4, 1, 7, 0])
    labels[np.arange(9)[None, :] >= lengths[:, None]] = -100
    return logits, labels, lengths


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), -1, keepdims=True))


def test_matches_direct_formulas() -> None:
    logits, labels, lengths = _batch()
    ev = evaluate_cross_entropy(logits, labels, LossOptions(ignore_index=-100), SEQ)
    lp = _log_softmax(logits)
    nll = np.array(
        [[-lp[i, t, labels[i, t]] for t in range(lengths[i])] for i in range(5)], dtype=object
    )
    per = [np.mean(v) if len(v) else np.nan for v in nll]
    s = ev.sequences
    assert_array_equal(s.tokens, lengths)
    assert_allclose(s.nll, per, rtol=1e-12)
    assert_allclose(s.perplexity, np.exp(per), rtol=1e-12)
    total = sum(sum(v) for v in nll)
    m = ev.metrics["sequences"]
    assert m["count"] == 5
    assert m["tokens"] == lengths.sum()
    assert m["nll"] == pytest.approx(total / lengths.sum(), rel=1e-12)
    assert m["perplexity"] == pytest.approx(np.exp(total / lengths.sum()), rel=1e-12)
    # Token-weighted: the overall NLL is the loss with reduction 'mean' here.
    assert m["nll"] == pytest.approx(ev.result.loss, rel=1e-12)


def test_from_log_probabilities_not_rounded_probabilities() -> None:
    # p(y) = exp(-800) is 0 in float64; its NLL must still be exactly 800.
    logits = np.array([[[0.0, -800.0], [0.0, -800.0]]])
    ev = evaluate_cross_entropy(logits, np.array([[1, 0]]), LossOptions(), SEQ)
    assert ev.sequences.nll[0] == pytest.approx(400.0, rel=1e-12)
    assert ev.metrics["sequences"]["perplexity"] == pytest.approx(np.exp(400.0), rel=1e-12)


def test_perplexity_beyond_float64_is_inf() -> None:
    logits = np.array([[[0.0, -2000.0]]])
    ev = evaluate_cross_entropy(logits, np.array([[1]]), LossOptions(), SEQ)
    assert ev.metrics["sequences"]["perplexity"] == np.inf


def test_float32_within_float32_precision() -> None:
    logits, labels, _ = _batch(seed=2)
    ev64 = evaluate_cross_entropy(logits, labels, LossOptions(ignore_index=-100), SEQ)
    ev32 = evaluate_cross_entropy(
        logits.astype(np.float32), labels, LossOptions(ignore_index=-100), SEQ
    )
    assert ev32.result.precision == "float32"
    assert ev32.metrics["sequences"]["nll"] == pytest.approx(
        ev64.metrics["sequences"]["nll"], rel=1e-5
    )


@pytest.mark.parametrize(
    ("logits", "labels"),
    [
        pytest.param(np.zeros((3, 4)), np.array([0, 1, 2]), id="no-token-axis"),
        pytest.param(np.zeros((2, 3, 4)), np.full((2, 3, 4), 0.25), id="probability-labels"),
    ],
)
def test_needs_index_labels_with_a_token_axis(logits, labels) -> None:
    with pytest.raises(InvalidOption) as err:
        evaluate_cross_entropy(logits, labels, LossOptions(), SEQ)
    assert err.value.loc == ("metrics", "sequences")
