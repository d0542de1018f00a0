"""Metrics through the client, and ``evaluate``: batches in, the dataset's metrics out."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from scorer_client import AsyncScoringClient, ScoringAPIError, ScoringClient
from scorer_client.evaluate import Progress
from sklearn.metrics import log_loss, precision_recall_fscore_support, roc_auc_score

from app.core import LossOptions
from app.core.metrics import MetricOptions, evaluate_binary_cross_entropy, evaluate_cross_entropy
from tests.client.conftest import SMALL_LIMIT
from tests.live_server import LiveServer

RNG = np.random.default_rng(8)
BINARY = {"classification": True, "curve_bins": 100, "calibration": True, "brier": True}


def _binary(n: int = 3000, c: int = 2) -> tuple[np.ndarray, np.ndarray]:
    labels = RNG.integers(0, 2, size=(n, c)).astype(np.float64)
    return RNG.normal(size=(n, c)) + 1.5 * (labels - 0.5), labels


def _batches(x: np.ndarray, y: np.ndarray, rows: int) -> Iterator[tuple[Any, Any]]:
    for start in range(0, len(x), rows):
        yield x[start : start + rows], y[start : start + rows]


def test_metrics_of_one_call_are_the_cores(server: LiveServer) -> None:
    x, y = _binary(400)
    with ScoringClient(server.url) as client:
        result = client.binary_cross_entropy(x, y, metrics=BINARY)
    options = MetricOptions(classification=True, curve_bins=100, calibration_bins=15, brier=True)
    expected = evaluate_binary_cross_entropy(x, y, LossOptions(), options).metrics
    assert result.metrics is not None
    assert result.metrics["classification"] == expected["classification"]
    assert result.metrics["curves"] == expected["curves"]
    assert result.aggregate is not None
    assert result.aggregate.task == "binary"


def test_a_batch_cut_into_requests_has_the_metrics_of_one(
    server: LiveServer, small_server: LiveServer
) -> None:
    logits = RNG.normal(size=(3000, 5)).astype(np.float32)
    labels = RNG.integers(0, 5, size=3000)
    metrics = {"classification": True, "top_k": [1, 2], "per_class": True}
    with (
        ScoringClient(server.url) as whole,
        ScoringClient(small_server.url, max_body_bytes=SMALL_LIMIT) as cut,
    ):
        one = whole.cross_entropy(logits, labels, metrics=metrics)
        many = cut.cross_entropy(logits, labels, metrics=metrics)
    assert one.chunks == 1 < many.chunks
    assert one.metrics is not None
    assert many.metrics is not None
    for key in ("classification", "top_k", "count", "accuracy"):
        assert many.metrics[key] == one.metrics[key]
    assert many.metrics["loss"] == pytest.approx(one.metrics["loss"], rel=1e-12)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_evaluate_equals_sklearn_on_the_whole_dataset(server: LiveServer, concurrency: int) -> None:
    x, y = _binary()
    with ScoringClient(server.url) as client:
        found = client.evaluate(
            _batches(x, y, 700),
            loss="binary-cross-entropy",
            metrics=BINARY,
            concurrency=concurrency,
            input_kind="logits",
        )
    assert (found.batches, found.rows) == (5, 3000)
    m = found.metrics
    p = 1 / (1 + np.exp(-x))
    precision, recall, f1, support = precision_recall_fscore_support(
        y.astype(int), (p > 0.5).astype(int), zero_division=0
    )
    assert m["classification"]["precision"] == pytest.approx(list(precision), rel=1e-12)
    assert m["classification"]["recall"] == pytest.approx(list(recall), rel=1e-12)
    assert m["classification"]["f1"] == pytest.approx(list(f1), rel=1e-12)
    assert m["classification"]["support"] == list(support)
    for c in range(2):
        exact = roc_auc_score(y[:, c], p[:, c])
        assert abs(m["curves"]["roc_auc"][c] - exact) <= m["curves"]["roc_auc_bound"][c] + 1e-12
    assert m["loss"] == pytest.approx(log_loss(y.ravel(), p.ravel()), rel=1e-9)
    whole = evaluate_binary_cross_entropy(
        x, y, LossOptions(), MetricOptions(classification=True, curve_bins=100)
    ).metrics
    assert m["classification"] == whole["classification"]
    assert m["curves"]["roc_auc"] == whole["curves"]["roc_auc"]


def test_evaluate_async_with_an_async_source(server: LiveServer) -> None:
    logits = RNG.normal(size=(900, 4))
    labels = RNG.integers(0, 4, size=900)

    async def source() -> AsyncIterator[tuple[Any, Any]]:
        for batch in _batches(logits, labels, 200):
            await asyncio.sleep(0)
            yield batch

    async def run() -> Any:
        async with AsyncScoringClient(server.url) as client:
            return await client.evaluate(source(), metrics={"top_k": [1, 3]}, concurrency=2)

    found = asyncio.run(run())
    expected = evaluate_cross_entropy(logits, labels, LossOptions(), MetricOptions(top_k=(1, 3)))
    assert found.metrics["top_k"] == expected.metrics["top_k"]
    assert found.metrics["count"] == 900
    assert found.batches == 5


def test_the_first_error_stops_the_run(server: LiveServer) -> None:
    x, y = _binary(300)
    y[250, 0] = 0.5  # soft: refused for classification, in the second batch
    with ScoringClient(server.url) as client, pytest.raises(ScoringAPIError) as info:
        client.evaluate(_batches(x, y, 200), loss="binary-cross-entropy", metrics=BINARY)
    assert info.value.status == 422
    assert [item.loc for item in info.value.errors] == [("labels", 50, 0)]


def test_progress_line_counts_batches_and_rows(server: LiveServer) -> None:
    x, y = _binary(500)
    out = io.StringIO()
    with ScoringClient(server.url) as client:
        client.evaluate(
            _batches(x, y, 100),
            loss="binary-cross-entropy",
            progress=Progress(out, interval=0.0, always=True),
        )
    lines = out.getvalue().rstrip("\n").split("\r")
    assert lines[1].startswith("1 batches, 100 rows, ")
    assert lines[-1].startswith("5 batches, 500 rows, ")


def test_no_batches_is_an_error(server: LiveServer) -> None:
    with ScoringClient(server.url) as client, pytest.raises(ValueError, match="no batches"):
        client.evaluate(iter(()))


class _OutOfOrder:
    """A client whose later batches finish first; records the options it was sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def binary_cross_entropy(self, x: Any, y: Any, **options: Any) -> Any:
        import time

        from scorer_client.metrics import from_wire, to_wire
        from scorer_client.results import LossResult

        self.sent.append(options)
        time.sleep(0.02 * (1 + (len(x) % 3 == 0)))  # uneven finishing order
        m = options["metrics"]
        core = MetricOptions(classification=m["classification"], curve_bins=m["curve_bins"])
        evaluation = evaluate_binary_cross_entropy(x, y, LossOptions(), core)
        aggregate = from_wire(to_wire(evaluation.aggregate))
        return LossResult(
            loss=None, reduction="sum", loss_sum=0.0, total_weight=0.0, label_kind="binary",
            precision="float64", per_sample=None, probs=None, log_probs=None, diagnostics=None,
            aggregate=aggregate,
        )  # fmt: skip

    cross_entropy = binary_cross_entropy


def test_aggregates_merge_in_batch_order_whatever_finishes_first() -> None:
    from scorer_client.evaluate import evaluate

    x, y = _binary(2000)
    sizes = [150, 300, 90, 300, 160, 400, 600]
    cuts = np.cumsum([0, *sizes])
    batches = [(x[a:b], y[a:b]) for a, b in itertools.pairwise(cuts)]
    metrics = {"classification": True, "curve_bins": 50}
    client = _OutOfOrder()
    parallel = evaluate(
        client, batches, loss="binary-cross-entropy", metrics=metrics, concurrency=4
    )
    serial = evaluate(client, batches, loss="binary-cross-entropy", metrics=metrics, concurrency=1)
    assert parallel.metrics == serial.metrics  # the same sums in the same order: bit for bit
    assert (parallel.batches, parallel.rows) == (7, 2000)
    assert all(
        (s["diagnostics"], s["outputs"], s["reduction"]) == (False, (), "sum") for s in client.sent
    )
