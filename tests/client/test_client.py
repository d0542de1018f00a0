"""ScoringClient and AsyncScoringClient against a live server: the core's numbers, errors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from scorer_client import AsyncScoringClient, ScoringAPIError, ScoringClient

from app.core import (
    LossOptions,
    SoftmaxOptions,
    score_binary_cross_entropy,
    score_cross_entropy,
    score_softmax,
)
from tests.live_server import LiveServer

RNG = np.random.default_rng(21)


@pytest.fixture(scope="module")
def client(server: LiveServer):
    with ScoringClient(server.url) as scoring:
        yield scoring


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "longdouble"])
def test_cross_entropy_any_float_dtype(client: ScoringClient, dtype: str) -> None:
    logits = RNG.normal(size=(50, 6)).astype(dtype)
    labels = RNG.integers(0, 6, size=50)
    result = client.cross_entropy(logits, labels, outputs=("per_sample", "probs"))
    sent = logits.astype(np.float64) if dtype == "longdouble" else logits
    expected = score_cross_entropy(sent, labels, LossOptions(outputs=frozenset({"probs"})))
    assert result.loss == expected.loss
    assert result.precision == expected.precision
    np.testing.assert_array_equal(result.per_sample, expected.per_sample)
    np.testing.assert_array_equal(result.probs, expected.probs)
    assert result.per_sample.dtype == expected.per_sample.dtype
    assert result.chunks == 1


def test_cross_entropy_options(client: ScoringClient) -> None:
    logits = RNG.normal(size=(40, 5))
    labels = RNG.integers(0, 5, size=40)
    class_weights = RNG.uniform(0.5, 2, size=5)
    sample_weights = RNG.uniform(0, 1, size=40)
    options = {
        "ignore_index": 1,
        "label_smoothing": 0.1,
        "temperature": 0.7,
        "reduction": "sum",
    }
    result = client.cross_entropy(
        logits,
        labels,
        class_weights=class_weights,
        sample_weights=sample_weights,
        per_sample_diagnostics=True,
        **options,
    )
    expected = score_cross_entropy(
        logits,
        labels,
        LossOptions(
            class_weights=class_weights,
            sample_weights=sample_weights,
            per_sample_diagnostics=True,
            **options,
        ),
    )
    assert result.loss == expected.loss
    assert result.total_weight == expected.total_weight
    assert result.diagnostics is not None
    assert expected.diagnostics is not None
    assert result.diagnostics.accuracy == expected.diagnostics.accuracy
    assert result.diagnostics.per_sample is not None
    np.testing.assert_array_equal(
        result.diagnostics.per_sample["margin"], expected.diagnostics.per_sample.margin
    )


def test_probability_inputs(client: ScoringClient) -> None:
    probs = RNG.dirichlet(np.ones(4), size=10)
    labels = RNG.integers(0, 4, size=10)
    result = client.cross_entropy(probs, labels, input_kind="probs")
    expected = score_cross_entropy(probs, labels, LossOptions(input_kind="probs"))
    assert result.loss == expected.loss


@pytest.mark.parametrize("pos_weight", [None, 2.5, np.array([1.0, 2.0, 0.5])])
def test_binary_cross_entropy(client: ScoringClient, pos_weight: object) -> None:
    logits = RNG.normal(size=(20, 3)).astype(np.float32)
    labels = (RNG.uniform(size=(20, 3)) > 0.5).astype(np.float32)
    result = client.binary_cross_entropy(logits, labels, pos_weight=pos_weight)
    expected = score_binary_cross_entropy(logits, labels, LossOptions(pos_weight=pos_weight))  # type: ignore[arg-type]
    assert result.loss == expected.loss
    assert result.label_kind == "binary"
    np.testing.assert_array_equal(result.per_sample, expected.per_sample)


def test_softmax(client: ScoringClient) -> None:
    logits = RNG.normal(size=(7, 11)).astype(np.float32)
    result = client.softmax(logits, outputs=("probs", "logsumexp"), temperature=2.0)
    expected = score_softmax(
        logits, SoftmaxOptions(outputs=frozenset({"probs", "logsumexp"}), temperature=2.0)
    )
    np.testing.assert_array_equal(result.probs, expected.probs)
    np.testing.assert_array_equal(result.logsumexp, expected.logsumexp)
    assert result.log_probs is None
    assert result.diagnostics is not None
    assert result.diagnostics.accuracy is None


def test_reduction_none(client: ScoringClient) -> None:
    result = client.cross_entropy(np.array([[1.0, 2.0, 3.0]]), np.array([2]), reduction="none")
    assert result.loss is None
    assert result.per_sample.tolist() == [pytest.approx(0.4076059644443803, rel=1e-15)]


def test_server_errors_carry_the_error_list(client: ScoringClient) -> None:
    with pytest.raises(ScoringAPIError) as caught:
        client.cross_entropy(np.zeros((3, 4)), np.array([0, 9, 1]))
    error = caught.value
    assert error.status == 422
    assert error.title == "Unprocessable Entity"
    assert [item.loc for item in error.errors] == [("labels", 1)]
    assert error.errors[0].type == "invalid_label"
    assert "labels must be integers in [0, 4)" in str(error)


def test_non_finite_logits_are_named(client: ScoringClient) -> None:
    logits = np.zeros((2, 3))
    logits[1, 2] = np.nan
    with pytest.raises(ScoringAPIError) as caught:
        client.cross_entropy(logits, np.array([0, 1]))
    assert caught.value.errors[0].loc == ("logits", 1, 2)


def test_async_client(server: LiveServer) -> None:
    logits = RNG.normal(size=(30, 4))
    labels = RNG.integers(0, 4, size=30)

    async def run() -> tuple[float | None, float | None]:
        async with AsyncScoringClient(server.url) as scoring:
            loss = await scoring.cross_entropy(logits, labels)
            soft = await scoring.softmax(logits, outputs=("log_probs",))
            with pytest.raises(ScoringAPIError):
                await scoring.binary_cross_entropy(logits, labels[:5].astype(np.float64))
            return loss.loss, float(soft.log_probs[0, 0])

    loss, first = asyncio.run(run())
    assert loss == score_cross_entropy(logits, labels, LossOptions()).loss
    assert first == pytest.approx(logits[0, 0] - np.log(np.exp(logits[0]).sum()), rel=1e-14)
