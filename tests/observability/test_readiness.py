"""/readyz: false while starting, true once warm, false from the drain on (in process; the
SIGTERM drain against a real uvicorn is tests/api/test_health.py::test_sigterm_drains)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.api import create_app
from app.settings import Settings


def test_ready_only_between_warm_up_and_drain() -> None:
    app = create_app(Settings(access_log=False))
    client = TestClient(app)
    assert client.get("/readyz").status_code == 503  # lifespan not started: starting
    assert client.get("/healthz").status_code == 200  # but alive
    with client:
        assert client.get("/readyz").status_code == 200
        app.state.readiness.draining = True  # what the SIGTERM handler does
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        # Draining still serves scoring requests: only new traffic is steered away.
        scored = client.post("/v1/cross-entropy", json={"logits": [[1.0, 2.0]], "labels": [0]})
        assert scored.status_code == 200
    assert app.state.readiness.ready is False  # after shutdown


def test_probes_are_not_counted() -> None:
    app = create_app(Settings(access_log=False, max_in_flight=1))
    with TestClient(app) as client:
        probes = ("/healthz", "/readyz", "/v2/health/live", "/v2/health/ready")
        for _ in range(3):
            for probe in probes:
                assert client.get(probe).status_code == 200
        text = client.get("/metrics").text
        assert not [probe for probe in probes if f'route="{probe}"' in text]
