"""The HTTP/1.1 connection as ``python -m app.serve`` runs it: uvicorn's, with the limits it lacks.

uvicorn (httptools) bounds neither the request head nor the time a client takes over
it: llhttp keeps a header of any size (issue #17: an unterminated header grew a worker
by its size), a connection that never sends a byte is never closed, a body may trickle in
until the request's deadline, and a response is written for as long as the client
takes to read it, holding its memory and, at a SIGTERM, the shutdown. This protocol
adds, for each connection:

- a head limit: request line and headers over ``max_header_bytes`` get 431 and the
  connection is closed;
- a head timeout: from the connection's opening (or its previous response) the head
  must be complete within ``header_timeout_seconds``, or the connection is closed: an
  idle connection and a slow head alike;
- a body timeout: no body byte for ``body_timeout_seconds``, or less than
  ``min_body_rate`` bytes a second on average after that long, and the application's
  body reader raises (408, see :class:`Connection`); should it not answer, the
  connection is closed;
- a write timeout: a response of which the client takes no byte for
  ``write_timeout_seconds`` is abandoned (the connection aborted, its buffer freed);
- a half-close (the client shuts its sending side after a complete request) still
  gets its answer, then the connection closes;
- at shutdown, an idle keep-alive connection stays open for a moment, so that a
  request already on its way is answered (with ``Connection: close``) rather than
  lost to the close.

One timer per worker checks every connection a few times a second; the hot path only
counts bytes. The application sees its connection as :data:`CONNECTION` in the scope's
``extensions``: whether the body timed out, and whether the client took its answer.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import struct
import termios
import weakref
from dataclasses import dataclass
from functools import lru_cache
from http import HTTPStatus
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.observability.prometheus import CONNECTIONS_CLOSED
from app.settings import Settings, get_settings

__all__ = ["CONNECTION", "Connection", "GuardedProtocol", "Guards"]

# The scope's ``extensions`` key of a request's :class:`Connection`.
CONNECTION = "scorer.connection"
# Unacknowledged bytes an answer may still have in the kernel and count as delivered.
_ACK_SLACK = 64 * 1024
# How long an idle keep-alive connection stays open once shutdown starts.
_SHUTDOWN_GRACE = 1.0

log = logging.getLogger("app.connections")


@dataclass(frozen=True)
class Guards:
    """The connection limits of one worker, from its settings."""

    header_timeout: float
    max_header_bytes: int
    body_timeout: float
    min_body_rate: int
    write_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Guards:
        return cls(
            settings.header_timeout_seconds,
            settings.max_header_bytes,
            settings.body_timeout_seconds,
            settings.min_body_rate,
            settings.write_timeout_seconds,
        )

    @property
    def tick(self) -> float:
        """How often the connections are checked: a quarter of the shortest timeout."""
        return min(1.0, self.header_timeout / 4, self.body_timeout / 4, self.write_timeout / 4)


@lru_cache
def _guards() -> Guards:
    return Guards.from_settings(get_settings())


class Connection:
    """What the application may know of its connection (one per TCP connection).

    ``body_timed_out``: the current request's body stalled; the body reader answers 408.
    ``lost``: the connection closed before the client took all that was written to it;
    ``unsent`` bytes were left behind, for ``reason`` (``client_disconnected``,
    ``write_stalled``, or ``shed`` for the budget).
    """

    __slots__ = ("_protocol", "_waiters", "body_timed_out", "lost", "reason", "unsent")

    def __init__(self, protocol: GuardedProtocol) -> None:
        self._protocol = protocol
        self._waiters: list[asyncio.Future[None]] = []
        self.body_timed_out = False
        self.lost = False
        self.reason: str | None = None
        self.unsent = 0

    async def flushed(self) -> bool:
        """Wait until the client has taken what was written (True), or is lost (False).

        Taken: nothing left in our buffer, and at most ``_ACK_SLACK`` bytes in the kernel's
        not yet acknowledged. A client acknowledges a small answer late (delayed ACK, up to
        40 ms), or with its next request: waiting for that cost every small request.
        """
        loop = asyncio.get_running_loop()
        delay = 0.001
        while not self.lost and self._protocol.pending(_ACK_SLACK, note=True) > 0:
            # Woken by the writes' progress (resume_writing, the check timer), the loss,
            # or a look again soon: a client that reads acknowledges within milliseconds,
            # and the kernel says nothing when it does. Several may wait: a keep-alive
            # connection's next request can finish first.
            waiter = loop.create_future()
            self._waiters.append(waiter)
            again = loop.call_later(delay, _done, waiter)
            try:
                await waiter
            finally:
                again.cancel()
            delay = min(2 * delay, 0.25)
        return not self.lost

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _done(waiter)

    def abort(self, reason: str) -> None:
        """Drop the connection and what is buffered for it (memory under pressure)."""
        self._protocol.abort(reason)

    def stalled_for(self) -> float:
        """How long the client has neither sent a body byte nor taken a response byte."""
        return self._protocol.stalled_for(self._protocol.loop.time())


def _done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Checks:
    """The one timer of an event loop that checks its connections."""

    def __init__(self) -> None:
        self.connections: set[GuardedProtocol] = set()
        self.armed = False

    def add(self, protocol: GuardedProtocol) -> None:
        self.connections.add(protocol)
        if not self.armed:
            self.armed = True
            protocol.loop.call_later(protocol.guards.tick, self.run, protocol.loop)

    def run(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for protocol in list(self.connections):
            protocol.check(now)
        if self.connections:
            tick = min(protocol.guards.tick for protocol in self.connections)
            loop.call_later(tick, self.run, loop)
        else:
            self.armed = False


_CHECKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Checks] = weakref.WeakKeyDictionary()


def _problem(status: HTTPStatus, detail: str) -> bytes:
    # Before the application exists for this request: the problem body by hand, as the
    # error table would write it, and the connection closed after it.
    body = json.dumps(
        {"type": "about:blank", "title": status.phrase, "status": int(status), "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {int(status)} {status.phrase}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Lingering:
    """The connection's transport, whose ``close`` waits until the client has acknowledged
    everything written (the check timer completes it, or aborts it at the write timeout).

    A socket closed with unacknowledged bytes leaves them to the kernel, and whether the
    client got its answer is then unknowable; uvicorn closes right after a response
    that says ``Connection: close``.
    """

    def __init__(self, transport: asyncio.Transport, protocol: GuardedProtocol) -> None:
        self.transport = transport
        self.protocol = protocol
        self.closing = False
        # What uvicorn calls on every request, bound once: __getattr__ costs a call each.
        self.write = transport.write
        self.get_write_buffer_size = transport.get_write_buffer_size
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading
        self.get_extra_info = transport.get_extra_info

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)

    def is_closing(self) -> bool:
        return self.closing or self.transport.is_closing()

    def close(self) -> None:
        self.closing = True
        if self.protocol.pending() == 0:
            self.transport.close()
        else:
            self.transport.pause_reading()

    def acknowledged(self) -> None:
        if self.closing and not self.transport.is_closing():
            self.transport.close()


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head, body and write limits (see the module)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        guards: Guards | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guards = guards or _guards()
        self.connection = Connection(self)
        now = self.loop.time()
        # Waiting for a request's head since (None: not waiting), and its bytes so far.
        self.head_since: float | None = now
        self.head_bytes = 0
        self.in_body = False
        self.body_since = self.body_last = now
        self.body_bytes = 0
        self.timed_out_at = 0.0
        self.write_size = self.last_pending = 0
        self.write_progress = now
        self.draining = False
        self.fd = -1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.lingering = _Lingering(transport, self)
        super().connection_made(cast(asyncio.Transport, self.lingering))
        sock = transport.get_extra_info("socket")
        self.fd = -1 if sock is None else sock.fileno()
        self.head_since = self.write_progress = self.loop.time()
        checks = _CHECKS.get(self.loop)
        if checks is None:
            checks = _CHECKS[self.loop] = _Checks()
        checks.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        connection = self.connection
        if not connection.lost:
            unsent = self.pending()
            if exc is not None:  # a reset empties the kernel's queue: the last count seen
                unsent = max(unsent, self.last_pending)
            if unsent or not (self.cycle is None or self.cycle.response_complete):
                connection.lost, connection.unsent = True, unsent
                connection.reason = "client_disconnected"
        self.fd = -1  # the number may be reused by the next socket
        connection.wake()
        checks = _CHECKS.get(self.loop)
        if checks is not None:
            checks.connections.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.head_since is not None:
            self.head_bytes += len(data)
        elif self.in_body:
            self.body_bytes += len(data)
            self.body_last = self.loop.time()
        super().data_received(data)
        if (
            self.head_since is not None
            and self.head_bytes > self.guards.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._close("header_too_large")
            if self.cycle is None or self.cycle.response_complete:
                detail = f"request line and headers exceed {self.guards.max_header_bytes} bytes"
                self.transport.write(_problem(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, detail))
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {CONNECTION: self.connection}  # type: ignore[dict-item]
        self.connection.body_timed_out = False
        if self.head_since is None:  # pipelined behind a response still being written
            self.head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.head_since, self.head_bytes = None, 0
        self.in_body = True
        self.body_since = self.body_last = self.loop.time()
        self.body_bytes = 0
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with Connection: close

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_body = False
        if self.cycle.response_complete:  # answered before its body was all read (413)
            self.head_since, self.head_bytes = self.loop.time(), 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next head is awaited from here, unless the rest of this body is still coming.
        if not self.in_body and not self.transport.is_closing():
            self.head_since, self.head_bytes = self.loop.time(), 0

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio's signature
        # A client may shut its sending side once its request is out (a half-close) and
        # still read the answer: keep the connection open for it, then close. Without a
        # complete request there is nothing to answer.
        if self.cycle is not None and not self.cycle.response_complete and not self.in_body:
            self.cycle.keep_alive = False
            return True
        return None

    def resume_writing(self) -> None:
        super().resume_writing()
        self.connection.wake()

    def shutdown(self) -> None:
        self.draining = True
        if self.cycle is None or self.cycle.response_complete:
            # Idle: a request may be on its way; answer it (with Connection: close)
            # rather than close under it. uvicorn's keep-alive timer or this closes.
            self.loop.call_later(_SHUTDOWN_GRACE, self._close_if_idle)
        else:
            super().shutdown()

    def _close_if_idle(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.head_bytes == 0 and not self.transport.is_closing():
            self.transport.close()

    def abort(self, reason: str) -> None:
        if self.transport.is_closing() and self.connection.lost:
            return
        connection = self.connection
        connection.lost, connection.reason = True, reason
        connection.unsent = self.pending()
        self._close(reason)
        self.transport.abort()

    def check(self, now: float) -> None:
        """Close the connection if its head, body or response has stalled past its limit."""
        guards = self.guards
        size = self.pending(note=True)
        if size != self.write_size or size == 0:
            self.write_size, self.write_progress = size, now
            if size == 0:
                self.connection.wake()
                self.lingering.acknowledged()
        elif now - self.write_progress > guards.write_timeout:
            log.warning(
                "abandoned a response: no byte taken for %.1f s, %d bytes unsent",
                now - self.write_progress,
                size,
            )
            self.abort("write_stalled")
            return
        idle = self.cycle is None or self.cycle.response_complete
        if self.in_body:
            if self.pipeline or self.transport.is_closing():
                return
            if not idle:
                self._check_body(now)
            elif self._body_slow(now):  # answered already (413): the rest only costs us
                self._close("body_timeout")
                self.transport.close()
        elif (
            self.head_since is not None
            and idle
            and now - self.head_since > guards.header_timeout
            and size == 0
            and not self.transport.is_closing()
        ):
            self._close("header_timeout" if self.head_bytes else "idle")
            self.transport.close()

    def _body_slow(self, now: float) -> bool:
        guards = self.guards
        if self.flow.read_paused:  # the application is not reading: not the client's fault
            self.body_last = now
        since = now - self.body_since - guards.body_timeout
        return now - self.body_last > guards.body_timeout or (
            since > 0 and self.body_bytes < guards.min_body_rate * since
        )

    def _check_body(self, now: float) -> None:
        guards, cycle = self.guards, self.cycle
        if cycle.response_started or not self._body_slow(now):
            return
        if not self.connection.body_timed_out:
            self.connection.body_timed_out = True
            self.timed_out_at = now
            cycle.message_event.set()  # the body reader wakes, sees the flag and answers 408
        elif now - self.timed_out_at > guards.body_timeout and not self.transport.is_closing():
            self._close("body_timeout")
            self.transport.close()

    def stalled_for(self, now: float) -> float:
        """How long the client has neither sent body bytes nor taken response bytes."""
        if self.in_body:
            return now - self.body_last
        if self.write_size > 0:
            return now - self.write_progress
        return 0.0

    def pending(self, slack: int = 0, *, note: bool = False) -> int:
        """Bytes written and not yet acknowledged by the client: in our buffer or the kernel's.

        The kernel takes megabytes (``tcp_wmem``), so our buffer alone says nothing of
        whether a client reads: an answer of a few megabytes to a client that never reads
        leaves it at once. Its queue (``TIOCOUTQ``: unsent and unacknowledged) does;
        it counts only past ``slack`` bytes. ``note``: remember the count, which a reset
        would erase.
        """
        size = self.transport.get_write_buffer_size()
        if self.fd >= 0:
            try:
                queued: int = struct.unpack(
                    "i", fcntl.ioctl(self.fd, termios.TIOCOUTQ, b"\0\0\0\0")
                )[0]
            except OSError:  # closed, or not a socket that has a queue
                queued = 0
            if queued > slack:
                size += queued
            if note:
                self.last_pending = size + queued if queued <= slack else size
        return size

    def _close(self, reason: str) -> None:
        CONNECTIONS_CLOSED.labels(reason).inc()
        log.debug("closing a connection: %s", reason)
