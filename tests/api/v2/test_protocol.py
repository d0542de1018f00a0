"""Server and model metadata, health and the Triton-style model configuration."""

from __future__ import annotations

from typing import Any

import pytest

MODELS = ["cross-entropy", "binary-cross-entropy", "softmax"]


def test_server_metadata(client: Any) -> None:
    body = client.get("/v2").json()
    assert body["name"] == "scorer"
    assert "binary_tensor_data" in body["extensions"]


def test_health(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/softmax/ready").json() == {"name": "softmax", "ready": True}


def test_not_ready_while_draining(client: Any) -> None:
    readiness = client.app.state.readiness
    readiness.draining = True
    try:
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/softmax/ready").status_code == 503
        assert client.get("/v2/health/live").status_code == 200
    finally:
        readiness.draining = False


@pytest.mark.parametrize("name", MODELS)
def test_model_metadata_and_config_agree(client: Any, name: str) -> None:
    metadata = client.get(f"/v2/models/{name}").json()
    config = client.get(f"/v2/models/{name}/config").json()
    assert metadata["name"] == config["name"] == name
    assert metadata["versions"] == ["1"]
    assert [t["name"] for t in metadata["inputs"]] == [t["name"] for t in config["input"]]
    assert [t["name"] for t in metadata["outputs"]] == [t["name"] for t in config["output"]]
    for meta, conf in zip(metadata["inputs"], config["input"], strict=True):
        assert conf["data_type"] == f"TYPE_{meta['datatype']}"
        assert conf["dims"] == meta["shape"]
    assert config["max_batch_size"] == 0


def test_cross_entropy_inputs(client: Any) -> None:
    inputs = {t["name"]: t for t in client.get("/v2/models/cross-entropy/config").json()["input"]}
    assert set(inputs) == {
        "logits",
        "log_probs",
        "probs",
        "labels",
        "class_weights",
        "sample_weights",
    }
    assert not inputs["labels"]["optional"]
    assert inputs["class_weights"]["optional"]


@pytest.mark.parametrize(
    "path", ["/v2/models/nope", "/v2/models/nope/ready", "/v2/models/nope/config"]
)
def test_unknown_model(client: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown model 'nope'; the models are cross-entropy, binary-cross-entropy, softmax"
    }
