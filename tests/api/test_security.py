"""API keys, open paths, CORS, and error bodies that reveal nothing of the server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import Settings

GOOD = {"logits": [[1.0, 2.0, 3.0]], "labels": [2]}
KEYS = ["key-one-0123456789", "key-two-9876543210"]


def _client(**settings: Any) -> TestClient:
    return TestClient(create_app(Settings(access_log=False, **settings)))


@pytest.fixture
def keyed() -> Iterator[TestClient]:
    with _client(api_keys=KEYS) as client:
        yield client


def test_no_keys_means_no_auth() -> None:
    with _client() as client:
        assert client.post("/v1/cross-entropy", json=GOOD).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="absent"),
        pytest.param("Basic a2V5LW9uZTo=", id="basic-scheme"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer ", id="bearer-empty"),
    ],
)
def test_missing_key_is_401(keyed: TestClient, authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = keyed.post("/v1/cross-entropy", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == "unauthorized"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("wrong", id="wrong"),
        pytest.param(KEYS[0][:-1], id="prefix"),
        pytest.param(KEYS[0] + "x", id="longer"),
        pytest.param(KEYS[0].upper(), id="case"),
    ],
)
def test_wrong_key_is_403(keyed: TestClient, token: str) -> None:
    response = keyed.post(
        "/v1/cross-entropy", json=GOOD, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert token not in response.text


@pytest.mark.parametrize("key", [pytest.param(k, id=f"key-{i}") for i, k in enumerate(KEYS)])
@pytest.mark.parametrize("scheme", [pytest.param("Bearer"), pytest.param("bearer")])
def test_each_key_is_accepted(keyed: TestClient, key: str, scheme: str) -> None:
    response = keyed.post(
        "/v1/cross-entropy", json=GOOD, headers={"authorization": f"{scheme} {key}"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"]
)
def test_probes_and_metrics_are_open_by_default(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_open_paths_are_configurable() -> None:
    with _client(api_keys=KEYS, open_paths=["/healthz"]) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/openapi.json").status_code == 401


def test_keys_come_from_the_environment_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCORER_API_KEYS", ",".join(KEYS))
    settings = Settings()
    assert [key.get_secret_value() for key in settings.api_keys] == KEYS
    assert KEYS[0] not in repr(settings)  # secrets never print


def test_cors_is_off_unless_configured() -> None:
    preflight = {
        "origin": "https://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with _client() as client:
        response = client.options("/v1/cross-entropy", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        response = client.post(
            "/v1/cross-entropy", json=GOOD, headers={"origin": "https://a.example"}
        )
        assert "access-control-allow-origin" not in response.headers


def test_cors_allows_configured_origins_only() -> None:
    allowed = "https://notebook.example"
    with _client(cors_origins=[allowed], api_keys=KEYS) as client:
        preflight = {
            "origin": allowed,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        response = client.options("/v1/cross-entropy", headers=preflight)
        assert response.status_code == 200  # preflight needs no key
        assert response.headers["access-control-allow-origin"] == allowed
        other = client.options(
            "/v1/cross-entropy", headers={**preflight, "origin": "https://x.example"}
        )
        assert other.headers.get("access-control-allow-origin") != "https://x.example"


# Error bodies: no stack trace, no file path, no exception repr, whatever goes wrong.

LEAKS = ("Traceback", 'File "', "/work/", "site-packages", ".py", "app.api", "RuntimeError")


def _assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, (leak, text)


def test_an_unexpected_fault_is_a_bare_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("boom in /work/main/app/secret.py line 3")

    monkeypatch.setattr("app.api.pipeline.run_sized", explode)
    with TestClient(
        create_app(Settings(access_log=False)), raise_server_exceptions=False
    ) as client:
        response = client.post("/v1/cross-entropy", json=GOOD)
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error"
    _assert_clean(response.text)


@pytest.mark.parametrize(
    ("content", "media"),
    [
        pytest.param(b"{", "application/json", id="truncated-json"),
        pytest.param(b"\xc1", "application/msgpack", id="bad-msgpack"),
        pytest.param(
            b'{"logits": [[1, "x"]], "labels": [0]}', "application/json", id="bad-element"
        ),
        pytest.param(
            b'{"logits": {"dtype": "float32", "shape": [1], "data": "!!"}}',
            "application/json",
            id="bad-base64",
        ),
        pytest.param(b"[1, 2]", "application/json", id="not-an-object"),
        pytest.param(b'{"a": 1}', "text/plain", id="unsupported-media"),
    ],
)
def test_client_errors_reveal_nothing(content: bytes, media: str) -> None:
    with _client() as client:
        response = client.post(
            "/v1/cross-entropy", content=content, headers={"content-type": media}
        )
    assert 400 <= response.status_code < 500
    _assert_clean(response.text)
