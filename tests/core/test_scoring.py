"""score_softmax: outputs, layouts, temperature, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from numpy.testing import assert_allclose

from app.core import (
    InvalidOption,
    InvalidShape,
    InvalidValue,
    NonFiniteInput,
    SoftmaxOptions,
    score_softmax,
)

ALL = frozenset({"probs", "log_probs", "logsumexp"})


def test_outputs_and_layout():
    x = np.random.default_rng(1).normal(scale=10, size=(3, 5, 4))
    r = score_softmax(x, SoftmaxOptions(outputs=ALL, axis=1, temperature=2.0))
    assert r.probs.shape == x.shape
    assert_allclose(r.probs, sp.softmax(x / 2, axis=1), rtol=1e-12)
    assert_allclose(r.log_probs, sp.log_softmax(x / 2, axis=1), rtol=1e-12, atol=1e-14)
    assert_allclose(r.logsumexp, sp.logsumexp(x / 2, axis=1), rtol=1e-13)
    assert r.precision == "float64"
    d = r.diagnostics
    assert d.count == 12
    assert d.accuracy is None
    assert d.mean_true_class_prob is None
    assert_allclose(d.mean_confidence, sp.softmax(x / 2, axis=1).max(axis=1).mean(), rtol=1e-12)


def test_only_probs_by_default_and_float32():
    r = score_softmax(np.array([[1.0, 2.0, 3.0]], np.float32), SoftmaxOptions(diagnostics=False))
    assert r.log_probs is None
    assert r.logsumexp is None
    assert r.diagnostics is None
    assert r.probs.dtype == np.float32
    assert_allclose(
        r.probs[0], [0.09003057317038046, 0.24472847105479764, 0.6652409557748219], rtol=1e-6
    )


def test_masked_classes():
    r = score_softmax(np.array([[0.0, -np.inf]]), SoftmaxOptions(outputs=ALL))
    assert r.probs.tolist() == [[1.0, 0.0]]
    assert r.logsumexp.tolist() == [0.0]
    assert r.diagnostics.numerical.zero_probs == 1


@pytest.mark.parametrize(
    ("x", "kw", "error", "loc"),
    [
        pytest.param([[0.0, np.nan]], {}, NonFiniteInput, ("logits", 0, 1), id="nan"),
        pytest.param([[-np.inf, -np.inf]], {}, InvalidValue, ("logits", 0), id="all_minus_inf"),
        pytest.param([[0.0, 1.0]], {"temperature": -1.0}, InvalidOption, ("temperature",), id="t"),
        pytest.param(
            [[0.0, 1.0]], {"precision": "half"}, InvalidOption, ("precision",), id="precision"
        ),
        pytest.param(
            [[0.0, 1.0]], {"outputs": frozenset({"x"})}, InvalidOption, ("outputs",), id="outputs"
        ),
        pytest.param([[0.0, 1.0]], {"axis": -3}, InvalidOption, ("axis",), id="axis"),
        pytest.param(1.0, {}, InvalidShape, ("logits",), id="scalar"),
        pytest.param([], {}, InvalidShape, ("logits",), id="empty"),
    ],
)
def test_errors(x, kw, error, loc):
    with pytest.raises(error) as info:
        score_softmax(np.asarray(x), SoftmaxOptions(**kw))
    assert info.value.loc == loc


def test_integer_logits():
    r = score_softmax(np.array([[1, 2, 3]]), SoftmaxOptions())
    assert_allclose(
        r.probs[0], [0.09003057317038046, 0.24472847105479764, 0.6652409557748219], rtol=1e-12
    )
