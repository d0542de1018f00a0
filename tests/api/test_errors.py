"""Each class of error: its status, problem-details body and media type, in both encodings."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tests.api.wire import decode, encode

GOOD = {"logits": [[1.0, 2.0, 3.0]], "labels": [2]}


def _post(client: Any, body: Any, encoding: str, path: str = "/v1/cross-entropy", **headers: str):
    content, media = encode(body, encoding)
    return client.post(path, content=content, headers={"content-type": media, **headers})


def _problem(response: Any, status: int, encoding: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    media = response.headers["content-type"]
    assert media == ("application/problem+json" if encoding == "json" else "application/msgpack")
    problem = decode(response.content, media)
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert problem["errors"]
    return problem


ENCODINGS = [pytest.param("json", id="json"), pytest.param("msgpack", id="msgpack")]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({**GOOD, "labels": [3]}, ["labels", 0], id="label-out-of-range"),
        pytest.param({**GOOD, "logits": [[1.0, "nan", 3.0]]}, ["logits", 0, 1], id="nan-logit"),
        pytest.param({**GOOD, "logits": [[1.0, "inf", 3.0]]}, ["logits", 0, 1], id="inf-logit"),
        pytest.param({**GOOD, "logits": [[1.0, True, 3.0]]}, ["logits", 0, 1], id="bool-logit"),
        pytest.param({**GOOD, "logits": [[1.0, 2.0], [1.0]]}, ["logits", 1], id="ragged"),
        pytest.param({**GOOD, "reduction": "avg"}, ["reduction"], id="bad-reduction"),
        pytest.param({**GOOD, "temperature": 0}, ["temperature"], id="zero-temperature"),
        pytest.param({**GOOD, "reduciton": "sum"}, ["reduciton"], id="unknown-field"),
        pytest.param({"labels": [2]}, ["logits"], id="missing-logits"),
        pytest.param({"logits": [[1.0, 2.0, 3.0]]}, ["labels"], id="missing-labels"),
        pytest.param({**GOOD, "probs": [[0.2, 0.3, 0.5]]}, ["probs"], id="two-predictions"),
        pytest.param({**GOOD, "labels": [2.0]}, ["labels"], id="float-index-label"),
        pytest.param(
            {**GOOD, "labels": [-100], "ignore_index": -100}, [], id="mean-over-zero-weight"
        ),
        pytest.param(
            {**GOOD, "class_weights": [1.0, 2.0]}, ["class_weights"], id="class-weights-length"
        ),
        pytest.param({**GOOD, "outputs": ["loss"]}, ["outputs", 0], id="unknown-output"),
    ],
)
def test_unprocessable(client: Any, encoding: str, body: dict[str, Any], loc: list[Any]) -> None:
    problem = _problem(_post(client, body, encoding), 422, encoding)
    assert any(item["loc"][: len(loc)] == loc for item in problem["errors"]), problem


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_mean_over_zero_weight_says_so(client: Any, encoding: str) -> None:
    body = {**GOOD, "labels": [-100], "ignore_index": -100}
    problem = _problem(_post(client, body, encoding), 422, encoding)
    assert "weight" in problem["detail"]


@pytest.mark.parametrize(
    ("content", "media"),
    [
        pytest.param(b"{not json", "application/json", id="json-syntax"),
        pytest.param(b"[1, 2]", "application/json", id="json-not-object"),
        pytest.param(b"\xff\xfe", "application/json", id="json-invalid-utf8"),
        pytest.param(msgspec.msgpack.encode(GOOD)[:-3], "application/msgpack", id="msgpack-cut"),
    ],
)
def test_malformed_body(client: Any, content: bytes, media: str) -> None:
    response = client.post("/v1/cross-entropy", content=content, headers={"content-type": media})
    encoding = "json" if "json" in media else "msgpack"
    _problem(response, 400, encoding)


def test_unsupported_media_type(client: Any) -> None:
    response = client.post(
        "/v1/cross-entropy", content=b"logits=1", headers={"content-type": "text/csv"}
    )
    problem = _problem(response, 415, "json")
    assert "text/csv" in problem["detail"]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_not_acceptable(client: Any, encoding: str) -> None:
    response = _post(client, GOOD, encoding, accept="text/html")
    assert response.status_code == 406
    assert decode(response.content, response.headers["content-type"])["status"] == 406


def test_unknown_route_is_a_problem(client: Any) -> None:
    response = client.get("/v1/nothing-here")
    problem = _problem(response, 404, "json")
    assert problem["instance"] == "/v1/nothing-here"


def test_wrong_method_is_a_problem(client: Any) -> None:
    _problem(client.get("/v1/cross-entropy"), 405, "json")


def test_no_internal_detail_on_server_error(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.api import scoring

    def explode(*_: Any) -> Any:
        raise RuntimeError("/srv/secret/path.py line 3")

    monkeypatch.setattr(scoring, "score_cross_entropy", explode)
    from fastapi.testclient import TestClient

    from app.api import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as local:
        response = local.post("/v1/cross-entropy", json=GOOD)
    problem = _problem(response, 500, "json")
    assert "secret" not in response.text
    assert problem["errors"][0]["message"] == "internal error"
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param(
            b'{"logits": [[1, 2]], "labels": [0], "temperature": 1e999}',
            ["temperature"],
            id="codec",
        ),
        pytest.param(
            b'{"logits": [[1, 2]], "labels": [0], "metrics": {"top_k": [1, 1]}}',
            ["metrics", "top_k"],
            id="core",
        ),
    ],
)
def test_a_bad_option_is_invalid_option_whichever_layer_refuses_it(
    client: Any, body: bytes, loc: list[Any]
) -> None:
    response = client.post(
        "/v1/cross-entropy", content=body, headers={"content-type": "application/json"}
    )
    problem = _problem(response, 422, "json")
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(loc, "invalid_option")]
