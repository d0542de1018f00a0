"""Batches over the server's body limit go in chunks and combine exactly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from scorer_client import AsyncScoringClient, ScoringAPIError, ScoringClient

from app.core import LossOptions, score_cross_entropy
from tests.client.conftest import SMALL_LIMIT
from tests.live_server import LiveServer

RNG = np.random.default_rng(33)
ROWS, CLASSES = 3000, 8  # 3000 * 8 * 8 bytes of float64 logits: several times SMALL_LIMIT


def _batch(dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    return RNG.normal(size=(ROWS, CLASSES)).astype(dtype), RNG.integers(0, CLASSES, size=ROWS)


@pytest.mark.parametrize(
    "announced", [pytest.param(True, id="limit-known"), pytest.param(False, id="limit-from-413")]
)
def test_mean_is_sum_over_weight(
    small_server: LiveServer, server: LiveServer, announced: bool
) -> None:
    logits, labels = _batch()
    labels[: ROWS // 2] = 3  # the first chunks are all ignored: no 422 for them, no weight
    class_weights = RNG.uniform(0.5, 3.0, size=CLASSES)
    sample_weights = RNG.uniform(0, 2, size=ROWS)
    options = {"ignore_index": 3, "label_smoothing": 0.05, "class_weights": class_weights}
    limit = SMALL_LIMIT if announced else 64 * 1024 * 1024
    with (
        ScoringClient(small_server.url, max_body_bytes=limit) as small,
        ScoringClient(server.url) as whole,
    ):
        chunked = small.cross_entropy(
            logits,
            labels,
            sample_weights=sample_weights,
            outputs=("per_sample", "probs"),
            per_sample_diagnostics=True,
            **options,
        )
        single = whole.cross_entropy(
            logits,
            labels,
            sample_weights=sample_weights,
            outputs=("per_sample", "probs"),
            per_sample_diagnostics=True,
            **options,
        )
    assert chunked.chunks > 2
    assert single.chunks == 1
    # The per-sample losses are the same numbers, so their sums agree to rounding.
    np.testing.assert_array_equal(chunked.per_sample, single.per_sample)
    np.testing.assert_array_equal(chunked.probs, single.probs)
    assert chunked.loss_sum == pytest.approx(single.loss_sum, rel=1e-13)
    assert chunked.total_weight == pytest.approx(single.total_weight, rel=1e-13)
    assert chunked.loss == pytest.approx(chunked.loss_sum / chunked.total_weight, rel=0)
    assert chunked.loss == pytest.approx(single.loss, rel=1e-13)
    # An average of the chunk means would be far off: the chunks carry unequal weights.
    d1, d2 = chunked.diagnostics, single.diagnostics
    assert d1 is not None
    assert d2 is not None
    assert d1.count == d2.count
    assert d1.accuracy == pytest.approx(d2.accuracy, rel=1e-13)
    assert d1.mean_entropy == pytest.approx(d2.mean_entropy, rel=1e-13)
    assert d1.max_abs_logit == d2.max_abs_logit
    assert d1.per_sample is not None
    assert d2.per_sample is not None
    np.testing.assert_array_equal(
        d1.per_sample["true_class_rank"], d2.per_sample["true_class_rank"]
    )


def test_sum_and_none(small_server: LiveServer) -> None:
    logits, labels = _batch("float32")
    with ScoringClient(small_server.url, max_body_bytes=SMALL_LIMIT) as small:
        total = small.cross_entropy(logits, labels, reduction="sum")
        each = small.cross_entropy(logits, labels, reduction="none")
    expected = score_cross_entropy(logits, labels, LossOptions(reduction="none"))
    np.testing.assert_array_equal(each.per_sample, expected.per_sample)
    assert each.loss is None
    assert total.loss == pytest.approx(
        float(expected.per_sample.astype(np.float64).sum()), rel=1e-6
    )


def test_token_sequences_and_binary(small_server: LiveServer) -> None:
    logits = RNG.normal(size=(400, 6, 5))
    labels = RNG.integers(0, 5, size=(400, 6))
    with ScoringClient(small_server.url, max_body_bytes=SMALL_LIMIT) as small:
        chunked = small.cross_entropy(logits, labels)
        targets = (RNG.uniform(size=logits.shape) > 0.5).astype(np.float64)
        binary = small.binary_cross_entropy(logits, targets, pos_weight=np.arange(1.0, 6.0))
    assert chunked.chunks > 1
    assert chunked.loss == pytest.approx(
        score_cross_entropy(logits, labels, LossOptions()).loss, rel=1e-13
    )
    assert binary.chunks > 1
    assert binary.per_sample.shape == logits.shape


def test_all_ignored_is_still_an_error(small_server: LiveServer) -> None:
    logits, labels = _batch()
    with (
        ScoringClient(small_server.url, max_body_bytes=SMALL_LIMIT) as small,
        pytest.raises(ScoringAPIError) as caught,
    ):
        small.cross_entropy(logits, np.full_like(labels, 2), ignore_index=2)
    assert caught.value.status == 422
    assert "total weight of 0" in caught.value.detail


def test_softmax_chunks(small_server: LiveServer) -> None:
    logits, _ = _batch()

    async def run() -> tuple[np.ndarray, int]:
        async with AsyncScoringClient(small_server.url) as small:  # learns the limit from 413
            result = await small.softmax(logits, outputs=("logsumexp",))
            assert result.logsumexp is not None
            return result.logsumexp, result.chunks

    logsumexp, chunks = asyncio.run(run())
    assert chunks > 1
    np.testing.assert_allclose(logsumexp, np.log(np.exp(logits).sum(axis=1)), rtol=1e-14)


def test_class_axis_first_is_not_cut(small_server: LiveServer) -> None:
    logits, _labels = _batch()
    with ScoringClient(small_server.url) as small, pytest.raises(ScoringAPIError) as caught:
        small.softmax(logits.T.copy(), axis=0)
    assert caught.value.status == 413
