"""One worker's gRPC server: the inference service and grpc.health.v1, beside REST.

It runs on the worker's event loop (uvloop under uvicorn: grpc.aio takes any asyncio
loop), started by the application's lifespan after warm-up and stopped when the
lifespan ends, after uvicorn has finished its requests. Workers share the port as they
share REST's: each binds it with ``SO_REUSEPORT`` and the kernel spreads connections.

The request limit is the server's largest message (``max_body_bytes``: a larger one
is RESOURCE_EXHAUSTED before it is read), and a connection's streams are at most
``max_in_flight``. gRPC receives a whole message before a call runs: a slow client holds
memory (at most a message per stream) but no work slot and no thread, and its
connection ends within the age limit below.

The health service answers SERVING while /readyz would answer 200, for the whole server
("") and for the inference service; it needs no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from app.api.backpressure import Capacity
from app.api.grpc.service import SERVICE, InferenceService
from app.api.pipeline import Limits
from app.settings import Settings

__all__ = ["GrpcServer"]

log = logging.getLogger("app.api.grpc")

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# How often a Watch of the health service learns of a change of readiness.
_WATCH_SECONDS = 0.5
# How long a connection lives (gRPC adds up to 10% either way, so that clients spread).
_AGE_MS = 60_000


def _grace_ms(settings: Settings) -> int:
    """How long calls in flight on an aged connection have to finish."""
    return int((settings.request_timeout_seconds + settings.write_timeout_seconds) * 1000)


def _address(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (``[::]:8001``)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class _Health(health.aio.HealthServicer):  # type: ignore[misc]  # (untyped)
    """grpc.health.v1 over the worker's readiness: Check reads it at each call."""

    def __init__(self, capacity: Capacity) -> None:
        super().__init__()
        self.capacity = capacity

    def status(self) -> Any:
        return _SERVING if self.capacity.not_ready() is None else _NOT_SERVING

    async def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 (the protocol's)
        if request.service in ("", SERVICE):
            return health_pb2.HealthCheckResponse(status=self.status())
        return await super().Check(request, context)

    async def follow(self) -> None:
        """Keep Watch's statuses in step with readiness, until cancelled."""
        while True:
            status = self.status()
            for service in ("", SERVICE):
                if self._server_status.get(service) != status:
                    await self.set(service, status)
            await asyncio.sleep(_WATCH_SECONDS)


class GrpcServer:
    """The gRPC server of one worker, over its application's settings and state."""

    def __init__(self, settings: Settings, limits: Limits, capacity: Capacity) -> None:
        self.settings = settings
        self.service = InferenceService(settings, limits, capacity)
        self.health = _Health(capacity)
        self.server: aio.Server | None = None
        self.port: int | None = None
        self._follow: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen on ``grpc_host:grpc_port`` and serve; the port (0 picks a free one)."""
        settings = self.settings
        server = aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                ("grpc.max_send_message_length", -1),
                ("grpc.max_concurrent_streams", settings.max_in_flight),
                ("grpc.so_reuseport", 1),
                # Find peers that vanished without closing (their calls hold memory).
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                # gRPC has neither a body nor a write timeout, and a call cannot be
                # cut off from here: a message trickling in, or an answer its client
                # never reads, without a deadline, would live as long as its
                # connection. So a connection ends after a minute (GOAWAY: clients
                # open the next at once), its calls in flight given the request
                # deadline and the write timeout to finish; idle ones after 5 minutes.
                ("grpc.max_connection_age_ms", _AGE_MS),
                ("grpc.max_connection_age_grace_ms", _grace_ms(settings)),
                ("grpc.max_connection_idle_ms", 300_000),
            ]
        )
        server.add_generic_rpc_handlers((self.service.handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        address = _address(settings.grpc_host, settings.grpc_port)
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"gRPC cannot listen on {address}: {exc}") from exc
        await server.start()
        self.server, self.port = server, port
        self._follow = asyncio.create_task(self.health.follow())
        log.info("gRPC listening on %s", _address(settings.grpc_host, port))
        return port

    async def stop(self) -> None:
        """Refuse new calls, let calls in flight finish (the graceful shutdown's time)."""
        if self._follow is not None:
            self._follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow
        if self.server is not None:
            await self.health.enter_graceful_shutdown()
            await self.server.stop(self.settings.graceful_shutdown_seconds)
            self.server = None
