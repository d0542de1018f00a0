"""Metrics in the scoring response, aggregates, and POST /v1/aggregates/merge end to end."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from tests.api.wire import as_array, as_float, decode, encode, tensor

EVERY = {
    "calibration_bins": 15,
    "brier": True,
    "top_k": [1, 3],
    "confusion": True,
    "per_class": True,
    "loss_histogram": True,
    "aggregate": True,
}
CUTS = [0, 3, 4, 40, 77, 101, 150, 160]  # 7 uneven batches


def _post(client: Any, path: str, body: Any, encoding: str = "json", **headers: str):
    content, media = encode(body, encoding)
    response = client.post(path, content=content, headers={"content-type": media, **headers})
    return response, decode(response.content, response.headers["content-type"])


def _dataset(n: int = 160, c: int = 6, seed: int = 11):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[labels]  # a model better than chance
    return logits, labels


def _close(a: Any, b: Any, rel: float = 1e-12) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _close(a[k], b[k], rel)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y, rel)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=rel, abs=0)
    else:
        assert a == b


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_seven_uneven_batches_merge_to_one_request(client: Any, encoding: str) -> None:
    logits, labels = _dataset()
    weights = np.linspace(0.5, 1.5, len(labels))

    def score(sl: slice) -> dict[str, Any]:
        body = {
            "logits": logits[sl].tolist(),
            "labels": labels[sl].tolist(),
            "sample_weights": weights[sl].tolist(),
            "metrics": EVERY,
        }
        response, out = _post(client, "/v1/cross-entropy", body, encoding)
        assert response.status_code == 200, out
        return out

    whole = score(slice(None))
    batches = [score(slice(a, b)) for a, b in itertools.pairwise(CUTS)]
    response, merged = _post(
        client, "/v1/aggregates/merge", {"aggregates": [b["aggregate"] for b in batches]}, encoding
    )
    assert response.status_code == 200, merged
    diag = whole["diagnostics"]
    assert merged["loss"] == pytest.approx(whole["loss"], rel=1e-12)
    assert merged["accuracy"] == pytest.approx(diag["accuracy"], rel=1e-12)
    assert merged["mean_confidence"] == pytest.approx(diag["mean_confidence"], rel=1e-12)
    for part in ("calibration", "brier", "top_k", "confusion", "per_class", "loss_histogram"):
        _close(merged[part], diag[part])
    # The merged aggregate merges again: merging is associative.
    _, again = _post(
        client, "/v1/aggregates/merge", {"aggregates": [merged["aggregate"]]}, encoding
    )
    _close(
        {k: v for k, v in again.items() if k != "aggregate"},
        {k: v for k, v in merged.items() if k != "aggregate"},
    )


def test_default_path_has_no_metrics(client: Any) -> None:
    _, out = _post(client, "/v1/cross-entropy", {"logits": [[1, 2, 3]], "labels": [2]})
    assert "aggregate" not in out
    assert "calibration" not in out["diagnostics"]


def test_only_the_metrics_asked_for(client: Any) -> None:
    body = {"logits": [[1, 2, 3]], "labels": [2], "metrics": {"top_k": [2]}}
    _, out = _post(client, "/v1/cross-entropy", body)
    assert out["diagnostics"]["top_k"] == [{"k": 2, "accuracy": 1.0}]
    assert "calibration" not in out["diagnostics"]
    assert "aggregate" not in out


@pytest.mark.parametrize(
    ("metrics", "bins"),
    [
        pytest.param({"calibration": True}, 15, id="default-15"),
        pytest.param({"calibration_bins": 4}, 4, id="bins-ask-for-it"),
        pytest.param({"calibration": True, "calibration_bins": 7}, 7, id="both"),
    ],
)
def test_calibration_bins(client: Any, metrics: dict[str, Any], bins: int) -> None:
    body = {"logits": [[1, 2, 3], [0, 0, 5]], "labels": [2, 0], "metrics": metrics}
    _, out = _post(client, "/v1/cross-entropy", body)
    cal = out["diagnostics"]["calibration"]
    assert cal["bins"] == bins
    assert len(cal["reliability"]) == bins
    assert cal["reliability"][-1]["upper"] == 1.0


def test_sequences_with_tensors(client: Any) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, size=(3, 5)).astype(np.int64)
    labels[1, 2:] = -100
    labels[2, :] = -100
    body = {
        "logits": tensor(logits, json_body=False),
        "labels": tensor(labels, json_body=False),
        "ignore_index": -100,
        "precision": "float64",
        "metrics": {"sequences": True, "aggregate": True},
    }
    response, out = _post(client, "/v1/cross-entropy", body, "msgpack")
    assert response.status_code == 200, out
    seq = out["diagnostics"]["sequences"]
    assert seq["count"] == 3
    assert seq["tokens"] == 7
    per = seq["per_sequence"]
    assert as_array(per["tokens"]).tolist() == [5, 2, 0]
    nll = as_array(per["nll"])
    assert np.isnan(nll[2])
    assert seq["perplexity"] == pytest.approx(np.exp(seq["nll"]), rel=1e-12)
    assert seq["nll"] == pytest.approx(as_float(out["loss"]), rel=1e-12)
    assert out["aggregate"]["sequences"] == {
        "sequences": 3,
        "tokens": 7,
        "nll_sum": pytest.approx(seq["nll"] * 7, rel=1e-12),
    }


def test_per_sequence_in_json_lists(client: Any) -> None:
    body = {
        "logits": [[[0, 0], [0, 0]]],
        "labels": [[0, -1]],
        "ignore_index": -1,
        "metrics": {"sequences": True},
    }
    _, out = _post(client, "/v1/cross-entropy", body)
    per = out["diagnostics"]["sequences"]["per_sequence"]
    assert per["tokens"] == [1]
    assert per["perplexity"] == [pytest.approx(2.0, rel=1e-15)]


def test_no_metrics_numbers_without_diagnostics(client: Any) -> None:
    body = {
        "logits": [[1, 2, 3]],
        "labels": [2],
        "diagnostics": False,
        "metrics": {"brier": True, "aggregate": True},
    }
    _, out = _post(client, "/v1/cross-entropy", body)
    assert out["diagnostics"] is None
    assert out["aggregate"]["brier_sum"] > 0


def test_infinite_loss_survives_json(client: Any) -> None:
    body = {
        "logits": [[0, "-inf"], [0, 0]],
        "labels": [1, 0],
        "metrics": {"per_class": True, "aggregate": True},
    }
    _, out = _post(client, "/v1/cross-entropy", body)
    assert out["aggregate"]["loss_sum"] == "inf"
    _, merged = _post(client, "/v1/aggregates/merge", {"aggregates": [out["aggregate"]] * 2})
    assert merged["loss"] == "inf"
    assert merged["per_class"]["mean_loss"] == [pytest.approx(np.log(2)), "inf"]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"metrics": {"top_k": [0]}}, ["metrics", "top_k", 0], id="k-zero"),
        pytest.param(
            {"metrics": {"calibration_bins": 0}}, ["metrics", "calibration_bins"], id="bins-zero"
        ),
        pytest.param(
            {"metrics": {"confusion": True, "confusion_max_classes": 2}},
            ["metrics", "confusion"],
            id="too-many-classes",
        ),
        pytest.param({"metrics": {"sequences": True}}, ["metrics", "sequences"], id="no-tokens"),
        pytest.param({"metrics": {"top_k": [2, 2]}}, ["metrics", "top_k"], id="k-twice"),
        pytest.param({"metrics": {"bins": 3}}, ["metrics", "bins"], id="unknown"),
        pytest.param({"metrics": {"brier": 1}}, ["metrics", "brier"], id="not-bool"),
    ],
)
def test_invalid_metric_options(client: Any, encoding: str, body: dict[str, Any], loc) -> None:
    full = {"logits": [[1, 2, 3]], "labels": [2], **body}
    response, out = _post(client, "/v1/cross-entropy", full, encoding)
    assert response.status_code == 422, out
    assert out["errors"][0]["loc"] == loc


BINARY_METRICS = {
    "classification": True,
    "threshold": 0.4,
    "curve_bins": 50,
    "calibration_bins": 10,
    "brier": True,
    "loss_histogram": True,
    "aggregate": True,
}


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_multilabel_metrics_merge_exactly_over_http(client: Any, encoding: str) -> None:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, size=(120, 3)).astype(float)
    logits = rng.normal(size=(120, 3)) + 2.0 * (labels - 0.5)
    whole_body = {"logits": logits.tolist(), "labels": labels.tolist(), "metrics": BINARY_METRICS}
    response, whole = _post(client, "/v1/binary-cross-entropy", whole_body, encoding)
    assert response.status_code == 200, whole
    found = whole["diagnostics"]
    assert found["classification"]["threshold"] == 0.4
    assert len(found["classification"]["precision"]) == 3
    assert len(found["curves"]["roc"]) == 3
    assert whole["aggregate"]["task"] == "binary"
    parts = []
    for lo, hi in ((0, 7), (7, 64), (64, 120)):
        body = {**whole_body, "logits": logits[lo:hi].tolist(), "labels": labels[lo:hi].tolist()}
        parts.append(_post(client, "/v1/binary-cross-entropy", body, encoding)[1]["aggregate"])
    response, merged = _post(client, "/v1/aggregates/merge", {"aggregates": parts}, encoding)
    assert response.status_code == 200, merged
    assert merged["classification"] == found["classification"]  # counts: exact
    assert merged["curves"]["roc_auc"] == found["curves"]["roc_auc"]
    assert merged["count"] == 360
    assert merged["brier"] == pytest.approx(found["brier"], rel=1e-12)


@pytest.mark.parametrize(
    ("metrics", "labels", "loc"),
    [
        ({"top_k": [1]}, [1.0, 0.0], ["metrics", "top_k"]),
        ({"per_class": True}, [1.0, 0.0], ["metrics", "per_class"]),
        ({"classification": True}, [1.0, 0.5], ["labels", 1]),
        ({"threshold": 2}, [1.0, 0.0], ["metrics", "threshold"]),
        ({"curve_bins": 0}, [1.0, 0.0], ["metrics", "curve_bins"]),
    ],
)
def test_binary_metrics_refused_with_their_location(
    client: Any, metrics: dict[str, Any], labels: list[float], loc: list[Any]
) -> None:
    body = {"logits": [0.5, -1.0], "labels": labels, "metrics": metrics}
    response, out = _post(client, "/v1/binary-cross-entropy", body)
    assert response.status_code == 422, out
    assert out["errors"][0]["loc"] == loc


def _aggregate(client: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    body = {"logits": [[1, 2, 3]], "labels": [2], "metrics": {**metrics, "aggregate": True}}
    return _post(client, "/v1/cross-entropy", body)[1]["aggregate"]


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_merge_errors_name_the_aggregate(client: Any, encoding: str) -> None:
    a = _aggregate(client, {"calibration": True})
    b = _aggregate(client, {})
    response, out = _post(client, "/v1/aggregates/merge", {"aggregates": [a, b]}, encoding)
    assert response.status_code == 422
    assert out["errors"][0]["loc"] == ["aggregates", 1, "calibration"]
    assert "same metrics" in out["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"aggregates": []}, ["aggregates"], id="empty"),
        pytest.param({}, ["aggregates"], id="missing"),
        pytest.param({"aggregates": [{}], "x": 1}, ["x"], id="extra-field"),
        pytest.param({"aggregates": [{"classes": 2}]}, ["aggregates", 0, "count"], id="no-count"),
        pytest.param({"aggregates": [[1]]}, ["aggregates", 0], id="not-object"),
    ],
)
def test_merge_body_errors(client: Any, body: dict[str, Any], loc: list[Any]) -> None:
    response, out = _post(client, "/v1/aggregates/merge", body)
    assert response.status_code == 422, out
    assert out["errors"][0]["loc"] == loc


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"classification": {"threshold": 0.5, "tp": [2**70], "fp": [0], "fn": [0], "tn": [0]}},
         ["aggregates", 0, "classification", "tp", 0]),
        ({"curves": {"positives": [[2**64]], "negatives": [[0]]}},
         ["aggregates", 0, "curves", "positives", 0, 0]),
        ({"loss_sum": 10**400}, ["aggregates", 0, "loss_sum"]),
        ({"count": 10**30}, ["aggregates", 0, "count"]),
    ],
)  # fmt: skip
def test_numbers_past_int64_or_float64_are_a_422(
    client: Any, change: dict[str, Any], loc: list[Any]
) -> None:
    body = {"logits": [0.5, -1.0], "labels": [1.0, 0.0], "metrics": {"aggregate": True}}
    aggregate = {**_post(client, "/v1/binary-cross-entropy", body)[1]["aggregate"], **change}
    response, out = _post(client, "/v1/aggregates/merge", {"aggregates": [aggregate]})
    assert response.status_code == 422, out
    assert out["errors"][0]["loc"] == loc


def test_classification_counts_that_would_wrap_are_a_422(client: Any) -> None:
    body = {
        "logits": [0.5],
        "labels": [1.0],
        "metrics": {"classification": True, "aggregate": True},
    }
    aggregate = _post(client, "/v1/binary-cross-entropy", body)[1]["aggregate"]
    aggregate["classification"]["tp"] = [2**62]
    response, out = _post(client, "/v1/aggregates/merge", {"aggregates": [aggregate, aggregate]})
    assert response.status_code == 422, out
    assert out["errors"][0]["loc"] == ["aggregates", 1, "classification", "tp"]
