"""What one worker takes on: slots for work, a byte budget for clients it waits on.

A request holds a work slot only while it is decoded, computed and encoded: at most
``max_in_flight`` at once, the next refused with 503 rather than queued (a queued
request holds its body and waits anyway). Receiving its body and sending its answer
hold no slot, so a client that trickles its body or never reads its answer costs no
capacity; what it costs is memory, counted against ``buffer_budget_bytes``: the body's
Content-Length (or what has come of a chunked body) while it is received, the
response's length until the client has taken it. Bodies and answers up to ``SMALL``
bytes are not counted: they cost less than the bookkeeping, and what they can hold is
bounded by the connections, which time out. A request that would pass the budget first
cuts off the clients that have stalled longest (a second or more without a byte either
way), then, if that is not enough, gets 503. ``/readyz`` answers 503 while the slots or
the budget are full, and while starting or draining.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import Overloaded
from app.api.lifecycle import Readiness
from app.api.security import reject
from app.observability.stats import STATS_KEY, RequestStats

__all__ = ["SMALL", "Admission", "Capacity", "ClientConnection", "Reservation", "connection_of"]

# Bodies and answers up to this size are not counted against the budget, nor refused.
SMALL = 64 * 1024
# A client is cut off to free memory only once it has stalled at least this long.
_SHED_AFTER = 1.0
_CONNECTION = "scorer.connection"  # app.protocol.CONNECTION: the server's, not imported
_CLOSE = (b"connection", b"close")


class ClientConnection(Protocol):
    """The connection ``python -m app.serve`` puts in the scope (``app.protocol``)."""

    body_timed_out: bool
    lost: bool
    reason: str | None
    unsent: int

    async def flushed(self) -> bool: ...

    def abort(self, reason: str) -> None: ...

    def stalled_for(self) -> float: ...


def connection_of(scope: Scope) -> ClientConnection | None:
    """The request's connection, under ``python -m app.serve``; None under other servers."""
    extensions = scope.get("extensions")
    return None if extensions is None else extensions.get(_CONNECTION)


class Reservation:
    """Bytes held for one client against the budget, until released."""

    __slots__ = ("capacity", "connection", "size")

    def __init__(self, capacity: Capacity, connection: ClientConnection | None) -> None:
        self.capacity = capacity
        self.connection = connection
        self.size = 0

    def grow(self, size: int, *, refuse: bool = True) -> None:
        """Hold ``size`` bytes in all; past the budget, shed stalled clients, then refuse.

        A small request (up to ``SMALL`` bytes) is never refused for the budget: it costs
        less than the bookkeeping, and it is what other clients must go on getting
        answered while stalled ones hold the memory.
        """
        if size <= self.size:
            return
        capacity = self.capacity
        extra = size - self.size
        if refuse and size > SMALL and capacity.buffered + extra > capacity.budget:
            capacity.shed(capacity.buffered + extra - capacity.budget, self)
            if capacity.buffered + extra > capacity.budget:
                raise Overloaded(
                    f"this worker holds {capacity.buffered} bytes for clients of its "
                    f"{capacity.budget}-byte budget; retry shortly"
                )
        capacity.buffered += extra
        self.size = size
        capacity.holders.add(self)

    def release(self) -> None:
        self.capacity.buffered -= self.size
        self.size = 0
        self.capacity.holders.discard(self)


class Capacity:
    """The work slots and the byte budget of one worker (each has its own event loop)."""

    def __init__(self, *, limit: int, budget: int, readiness: Readiness) -> None:
        self.limit = limit
        self.budget = budget
        self.readiness = readiness
        self.working = 0
        self.buffered = 0
        self.holders: set[Reservation] = set()

    def not_ready(self) -> str | None:
        """Why this worker should not be sent requests now; None when it should."""
        if not self.readiness.started:
            return "starting"
        if self.readiness.draining:
            return "draining"
        if self.working >= self.limit:
            return "busy"
        if self.buffered >= self.budget:
            return "memory budget full"
        return None

    def admit(self) -> None:
        """Refuse a new request (Overloaded) when no slot is free; its body meets the budget."""
        if self.working >= self.limit:
            raise Overloaded(f"this worker is serving {self.limit} requests; retry shortly")

    def __enter__(self) -> None:
        """Hold a work slot (decode, compute, encode); Overloaded when none is free."""
        if self.working >= self.limit:
            raise Overloaded(f"this worker is serving {self.limit} requests; retry shortly")
        self.working += 1

    def __exit__(self, *exc: object) -> None:
        self.working -= 1

    def shed(self, needed: int, keep: Reservation | None) -> None:
        """Cut off stalled clients, longest stalled first, until ``needed`` bytes are free."""
        stalled = []
        for holder in self.holders:
            if holder is keep or holder.connection is None:
                continue
            seconds = holder.connection.stalled_for()
            if seconds >= _SHED_AFTER:
                stalled.append((seconds, holder))
        stalled.sort(key=lambda item: item[0], reverse=True)
        freed = 0
        for _, holder in stalled:
            if freed >= needed:
                break
            freed += holder.size
            assert holder.connection is not None
            holder.connection.abort("shed")
            holder.release()


class Admission:
    """Admits requests by :class:`Capacity`; holds each response's bytes until delivered.

    A response sent while draining says ``Connection: close``, so a keep-alive client
    opens its next connection elsewhere instead of reusing one about to close. Once the
    application is done, waits until the response has reached the kernel (bounded by the
    server's write timeout) and records in the request's stats what was not delivered.
    Probes are never refused.
    """

    def __init__(self, app: ASGIApp, *, capacity: Capacity, exempt_paths: Iterable[str]) -> None:
        self.app = app
        self.capacity = capacity
        self.exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        capacity = self.capacity
        try:
            capacity.admit()
        except Overloaded as exc:
            await reject(
                scope, receive, send, HTTPStatus.SERVICE_UNAVAILABLE, "overloaded", str(exc)
            )
            return
        connection = connection_of(scope)
        reservation: Reservation | None = None
        size = dropped = 0

        async def held_send(message: Message) -> None:
            nonlocal reservation, size, dropped
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                if capacity.readiness.draining:
                    message["headers"] = headers = [*headers, _CLOSE]
                for name, value in headers:
                    if name == b"content-length":
                        size = int(value)
                        if size > SMALL:
                            # Already computed: counted, never refused; new requests see it.
                            reservation = Reservation(capacity, connection)
                            reservation.grow(size, refuse=False)
                        break
            elif connection is not None and connection.lost:
                dropped += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, held_send)
            if connection is not None:
                # A small answer leaves with its last write; a large one is waited for.
                taken = await connection.flushed() if size > SMALL else not connection.lost
                if not taken:
                    _undelivered(scope, connection, dropped)
        finally:
            if reservation is not None:
                reservation.release()


def _undelivered(scope: Scope, connection: ClientConnection, dropped: int) -> None:
    stats: RequestStats | None = scope.get(STATS_KEY)
    if stats is not None:
        stats.undelivered = dropped + connection.unsent
        stats.error = connection.reason or "client_disconnected"
