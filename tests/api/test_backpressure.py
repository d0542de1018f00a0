"""Work slots, the byte budget, shedding, readiness; in process (live: tests/test_protocol.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.api.backpressure import SMALL, Capacity, Reservation
from app.api.errors import Overloaded
from app.api.lifecycle import Readiness
from app.settings import Settings

GOOD = {"logits": [[1.0, 2.0, 3.0]], "labels": [2]}


class FakeConnection:
    """A client connection that has stalled for ``stalled`` seconds."""

    def __init__(self, stalled: float) -> None:
        self.stalled = stalled
        self.aborted: str | None = None
        self.body_timed_out = False
        self.lost = False
        self.reason: str | None = None
        self.unsent = 0

    async def flushed(self) -> bool:
        return not self.lost

    def abort(self, reason: str) -> None:
        self.aborted = reason
        self.lost = True

    def stalled_for(self) -> float:
        return self.stalled


def _capacity(limit: int = 2, budget: int = 10 * SMALL) -> Capacity:
    readiness = Readiness(started=True)
    return Capacity(limit=limit, budget=budget, readiness=readiness)


def test_work_slots_are_counted_and_refused_when_full() -> None:
    capacity = _capacity(limit=2)
    with capacity, capacity:
        assert capacity.not_ready() == "busy"
        with pytest.raises(Overloaded, match="serving 2 requests"):
            capacity.admit()
        with pytest.raises(Overloaded), capacity:
            pass
    assert capacity.working == 0
    assert capacity.not_ready() is None


def test_reservations_hold_bytes_until_released() -> None:
    capacity = _capacity(budget=10 * SMALL)
    first, second = Reservation(capacity, None), Reservation(capacity, None)
    first.grow(6 * SMALL)
    first.grow(5 * SMALL)  # never shrinks while held
    assert capacity.buffered == 6 * SMALL
    with pytest.raises(Overloaded, match="budget"):
        second.grow(5 * SMALL)
    assert capacity.buffered == 6 * SMALL  # the refused one holds nothing
    second.grow(SMALL)  # small: never refused
    first.release()
    second.release()
    assert capacity.buffered == 0
    assert not capacity.holders


def test_an_answer_already_computed_is_counted_past_the_budget() -> None:
    capacity = _capacity(budget=2 * SMALL)
    answer = Reservation(capacity, None)
    answer.grow(3 * SMALL, refuse=False)
    assert capacity.buffered == 3 * SMALL
    assert capacity.not_ready() == "memory budget full"
    answer.release()
    assert capacity.not_ready() is None


def test_the_longest_stalled_clients_are_cut_off_first_and_only_as_needed() -> None:
    capacity = _capacity(budget=10 * SMALL)
    fresh, stalled, older = FakeConnection(0.2), FakeConnection(3.0), FakeConnection(8.0)
    holders = [Reservation(capacity, connection) for connection in (fresh, stalled, older)]
    for holder in holders:
        holder.grow(3 * SMALL)
    incoming = Reservation(capacity, FakeConnection(0.0))
    incoming.grow(3 * SMALL)  # 12 > 10: the one stalled longest goes, and that is enough
    assert (fresh.aborted, stalled.aborted, older.aborted) == (None, None, "shed")
    assert capacity.buffered == 9 * SMALL
    incoming.grow(6 * SMALL)  # 12 > 10 again: the next stalled one
    assert stalled.aborted == "shed"
    with pytest.raises(Overloaded):  # a client stalled under a second is never cut off
        Reservation(capacity, None).grow(2 * SMALL)
    assert fresh.aborted is None


def test_readiness_says_why_not() -> None:
    capacity = _capacity()
    capacity.readiness.started = False
    assert capacity.not_ready() == "starting"
    capacity.readiness.started = True
    capacity.readiness.draining = True
    assert capacity.not_ready() == "draining"


def test_readyz_reports_a_busy_worker_and_answers_while_draining_close_the_connection() -> None:
    app = create_app(Settings(access_log=False, max_in_flight=1))
    with TestClient(app) as client:
        capacity: Capacity = app.state.capacity
        with capacity:  # a request being computed holds the only slot
            busy = client.get("/readyz")
            assert busy.status_code == 503
            assert busy.json() == {"status": "not ready", "reason": "busy"}
            assert client.get("/v2/health/ready").status_code == 503
            refused = client.post("/v1/cross-entropy", json=GOOD)
            assert refused.status_code == 503
            assert refused.json()["errors"][0]["type"] == "overloaded"
        answered = client.post("/v1/cross-entropy", json=GOOD)
        assert answered.status_code == 200
        assert "connection" not in answered.headers
        app.state.readiness.draining = True
        draining = client.post("/v1/cross-entropy", json=GOOD)
        assert draining.status_code == 200
        assert draining.headers["connection"] == "close"
        assert client.get("/readyz").json()["reason"] == "draining"
