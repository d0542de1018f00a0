"""The scoring routes end to end: negotiation, tensors, options, outputs, limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.api.wire import as_array, as_float, decode, encode, tensor

CLASSIC = {"logits": [[1.0, 2.0, 3.0]], "labels": [2]}
CLASSIC_LOSS = 0.4076059644443804
CLASSIC_PROBS = [0.09003057317038046, 0.24472847105479764, 0.6652409557748218]


def _post(client: Any, body: Any, encoding: str = "json", path: str = "cross-entropy", **hdr: str):
    content, media = encode(body, encoding)
    return client.post(f"/v1/{path}", content=content, headers={"content-type": media, **hdr})


@pytest.mark.parametrize(
    ("encoding", "accept", "expected"),
    [
        pytest.param("json", None, "application/json", id="json-default"),
        pytest.param("msgpack", None, "application/msgpack", id="msgpack-default"),
        pytest.param("json", "application/msgpack", "application/msgpack", id="json-to-msgpack"),
        pytest.param("msgpack", "application/json", "application/json", id="msgpack-to-json"),
        pytest.param("msgpack", "*/*", "application/msgpack", id="any"),
        pytest.param(
            "json", "application/json;q=0.5, application/msgpack", "application/msgpack", id="q"
        ),
    ],
)
def test_response_media_type(client: Any, encoding: str, accept: str | None, expected: str):
    headers = {"accept": accept} if accept else {}
    response = _post(client, CLASSIC, encoding, **headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == expected
    body = decode(response.content, expected)
    assert as_float(body["loss"]) == pytest.approx(CLASSIC_LOSS, rel=1e-15)


@pytest.mark.parametrize("media", ["application/x-msgpack", "application/vnd.msgpack"])
def test_msgpack_aliases(client: Any, media: str) -> None:
    content, _ = encode(CLASSIC, "msgpack")
    response = client.post("/v1/cross-entropy", content=content, headers={"content-type": media})
    assert response.status_code == 200
    assert decode(response.content, response.headers["content-type"])["label_kind"] == "index"


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_tensor_in_tensor_out(client: Any, encoding: str) -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(16, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=16).astype(np.int32)
    body = {
        "logits": tensor(logits, json_body=encoding == "json"),
        "labels": tensor(labels, json_body=encoding == "json"),
        "outputs": ["per_sample", "probs", "log_probs"],
    }
    response = _post(client, body, encoding)
    assert response.status_code == 200, response.text
    out = decode(response.content, response.headers["content-type"])
    assert out["precision"] == "float32"
    assert out["probs"]["dtype"] == "float32"
    probs = as_array(out["probs"])
    assert probs.shape == (16, 5)
    x = logits.astype(np.float64)
    lse = np.log(np.exp(x - x.max(1, keepdims=True)).sum(1)) + x.max(1)
    np.testing.assert_allclose(as_array(out["per_sample"]), lse - x[np.arange(16), labels], 1e-5)
    np.testing.assert_allclose(as_array(out["log_probs"]), x - lse[:, None], rtol=1e-5, atol=1e-6)
    assert as_float(out["loss"]) == pytest.approx(float(np.mean(lse - x[np.arange(16), labels])))


def test_precision_can_be_forced(client: Any) -> None:
    body = {"logits": tensor(np.array([[1, 2, 3]], np.float32), json_body=True), "labels": [2]}
    out = _post(client, {**body, "precision": "float64"}).json()
    assert out["precision"] == "float64"
    assert as_float(out["loss"]) == pytest.approx(CLASSIC_LOSS, rel=1e-15)


def test_classic_softmax_and_shapes(client: Any) -> None:
    out = _post(client, {**CLASSIC, "outputs": ["probs"]}).json()
    np.testing.assert_allclose(out["probs"], [CLASSIC_PROBS], rtol=1e-15)
    assert "per_sample" not in out
    assert out["shapes"] == {"predictions": [1, 3], "labels": [1], "per_sample": [1]}
    assert out["reduction"] == "mean"
    assert out["total_weight"] == 1.0


def test_reduction_none_has_null_loss(client: Any) -> None:
    out = _post(client, {**CLASSIC, "reduction": "none"}).json()
    assert out["loss"] is None
    assert out["per_sample"] == pytest.approx([CLASSIC_LOSS], rel=1e-15)


def test_masked_true_class_gives_infinite_loss(client: Any) -> None:
    out = _post(client, {"logits": [[0.0, "-inf"], [0.0, 1.0]], "labels": [1, 0]}).json()
    assert out["per_sample"][0] == "inf"
    assert out["loss"] == "inf"


def test_masked_class_without_target_mass_contributes_zero(client: Any) -> None:
    body = {"logits": [[0.0, "-inf", 0.0]], "labels": [[0.5, 0.0, 0.5]], "reduction": "sum"}
    out = _post(client, body).json()
    assert out["loss"] == pytest.approx(np.log(2.0), rel=1e-15)
    assert out["label_kind"] == "probability"


def test_sequences_with_padding(client: Any) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 6))
    labels = rng.integers(0, 6, size=(2, 4))
    labels[1, 2:] = -100
    body = {"logits": logits.tolist(), "labels": labels.tolist(), "ignore_index": -100}
    out = _post(client, body).json()
    lse = np.log(np.exp(logits).sum(-1))
    picked = np.take_along_axis(logits, np.where(labels < 0, 0, labels)[..., None], -1)[..., 0]
    losses = np.where(labels < 0, 0.0, lse - picked)
    assert out["shapes"]["per_sample"] == [2, 4]
    np.testing.assert_allclose(out["per_sample"], losses, rtol=1e-12)
    assert out["loss"] == pytest.approx(losses.sum() / 6, rel=1e-12)
    assert out["diagnostics"]["count"] == 6


def test_per_sample_diagnostics(client: Any) -> None:
    out = _post(client, {**CLASSIC, "per_sample_diagnostics": True}).json()
    per = out["diagnostics"]["per_sample"]
    assert per["predicted_class"] == [2]
    assert per["true_class_rank"] == [1]
    assert per["confidence"] == pytest.approx([CLASSIC_PROBS[2]], rel=1e-12)
    assert per["margin"] == pytest.approx([CLASSIC_PROBS[2] - CLASSIC_PROBS[1]], rel=1e-12)


def test_diagnostics_can_be_turned_off(client: Any) -> None:
    assert _post(client, {**CLASSIC, "diagnostics": False}).json()["diagnostics"] is None


def test_binary_cross_entropy(client: Any) -> None:
    body = {"logits": [0.5, -1.0], "labels": [1, 0], "pos_weight": 2.0, "reduction": "sum"}
    out = _post(client, body, path="binary-cross-entropy").json()
    expected = 2 * np.log1p(np.exp(-0.5)) + np.log1p(np.exp(-1.0))
    assert out["loss"] == pytest.approx(expected, rel=1e-14)
    assert out["label_kind"] == "binary"


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_softmax_route(client: Any, encoding: str) -> None:
    body = {"logits": [[1000.0, 1.0]], "outputs": ["probs", "log_probs", "logsumexp"]}
    out = decode(_post(client, body, encoding, path="softmax").content, f"application/{encoding}")
    np.testing.assert_allclose(as_array(out["log_probs"]), [[0.0, -999.0]], atol=1e-12)
    np.testing.assert_allclose(as_array(out["logsumexp"]), [1000.0], rtol=1e-15)
    np.testing.assert_allclose(as_array(out["probs"])[0, 0], 1.0)
    assert out["shapes"] == {"predictions": [1, 2], "per_sample": [1]}


class TestBodyLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"max_body_bytes": 1024}

    def test_refused_from_content_length(self, client: Any) -> None:
        content, media = encode({"logits": [[0.5] * 400], "labels": [0]}, "json")
        response = client.post(
            "/v1/cross-entropy", content=content, headers={"content-type": media}
        )
        assert response.status_code == 413
        assert "1024" in response.json()["detail"]

    def test_refused_while_reading_chunked(self, client: Any) -> None:
        content, _ = encode({"logits": [[0.5] * 400], "labels": [0]}, "json")

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(content), 100):
                yield content[i : i + 100]

        response = client.post(
            "/v1/cross-entropy", content=chunks(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413

    def test_small_body_passes(self, client: Any) -> None:
        assert _post(client, CLASSIC).status_code == 200


def test_compute_threads_change_nothing_but_the_time() -> None:
    # [1024, 1000] float32 is two 2 MiB blocks: with 2 threads they run side by side.
    from fastapi.testclient import TestClient

    from app.api import create_app
    from app.settings import Settings

    rng = np.random.default_rng(7)
    logits = (rng.standard_normal((1024, 1000)) * 4).astype(np.float32)
    labels = rng.integers(0, 1000, 1024)
    body = {
        "logits": tensor(logits, json_body=False),
        "labels": tensor(labels, json_body=False),
        "outputs": ["per_sample", "probs"],
    }
    answers = []
    for threads in (1, 2):
        with TestClient(create_app(Settings(compute_threads=threads))) as local:
            response = _post(local, body, "msgpack")
        assert response.status_code == 200
        answers.append(response.content)
    assert answers[0] == answers[1]
    probs = as_array(decode(answers[0], "application/msgpack")["probs"])
    assert probs.shape == (1024, 1000)


@pytest.mark.parametrize("threads", ["0", "65", "two"])
def test_compute_threads_out_of_range_are_refused(
    threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    from app.settings import Settings

    monkeypatch.setenv("SCORER_COMPUTE_THREADS", threads)
    with pytest.raises(ValidationError, match="compute_threads"):
        Settings()
