"""``python -m app.serve``: uvicorn, with a listening socket of its own for each worker.

uvicorn's workers share one listening socket, and whichever worker wakes first accepts
every connection waiting on it. A client that opens its connections in a burst and
keeps them alive (wrk; a pipeline's connection pool) can land all of them on one
worker, which then does all the work while the others idle, so that a second worker
adds nothing (bench/README.md, design decisions). On Linux each worker here binds its
own socket into the port's ``SO_REUSEPORT`` group instead, and the kernel spreads new
connections over the workers by a hash of their addresses (uvicorn has no option for
it: encode/uvicorn#2472). uvicorn's own supervisor still starts, restarts and stops the
workers; it hands each one a :class:`WorkerListener`, which becomes that worker's socket
when the worker unpickles it.

Elsewhere, and with one worker, this is ``uvicorn app.main:app`` with the same options.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from app.protocol import GuardedProtocol
from app.settings import Settings, get_settings

__all__ = ["WorkerListener", "main", "reuse_port_balances"]

APP = "app.main:app"


def reuse_port_balances() -> bool:
    """Whether sockets sharing a port with ``SO_REUSEPORT`` share its connections (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` in the port's ``SO_REUSEPORT`` group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_or_exit(host: str, port: int, code: int) -> socket.socket:
    """:func:`_bind`, or log why not and exit with ``code``.

    A worker exits with ``STARTUP_FAILURE``: uvicorn's supervisor restarts a worker that
    dies, forever, unless it exits so; then it stops, as when a worker's app fails.
    """
    try:
        return _bind(host, port)
    except OSError as exc:
        logging.getLogger("uvicorn.error").error("cannot bind %s:%s: %s", host, port, exc)
        sys.exit(code)


class WorkerListener:
    """Pickles as "bind a socket of your own": each worker that unpickles it gets one.

    uvicorn's supervisor passes the same socket list to every worker it starts, and a
    worker listens on what it unpickles, so a worker it restarts gets a socket too.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return _bind_or_exit, (self.host, self.port, STARTUP_FAILURE)


def _options(argv: Sequence[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1")),
        help="worker processes (default: $WEB_CONCURRENCY, else 1)",
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=settings.graceful_shutdown_seconds,
        help="longest wait for requests in flight after SIGTERM "
        "(default: $SCORER_GRACEFUL_SHUTDOWN_SECONDS, else 20)",
    )
    parser.add_argument("--timeout-keep-alive", type=int, default=5)
    parser.add_argument("--no-server-header", dest="server_header", action="store_false")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the application as ``uvicorn app.main:app`` would, with the options above."""
    options = _options(argv, get_settings())
    if options.workers < 1:
        raise SystemExit("--workers must be at least 1")
    # gRPC listens where REST does unless told otherwise; the workers read the setting.
    os.environ.setdefault("SCORER_GRPC_HOST", options.host)
    get_settings.cache_clear()
    config = uvicorn.Config(
        APP,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_level=options.log_level,
        access_log=options.access_log,
        timeout_graceful_shutdown=options.timeout_graceful_shutdown,
        timeout_keep_alive=options.timeout_keep_alive,
        server_header=options.server_header,
        # uvicorn's httptools protocol with head, body and write limits (app/protocol.py).
        http=GuardedProtocol,
    )
    if options.workers == 1:
        uvicorn.Server(config).run()
        return
    if not reuse_port_balances():
        Multiprocess(config, sockets=[config.bind_socket()]).run()  # as uvicorn does
        return
    # The parent binds first, and keeps the socket (bound, not listening: it takes no
    # connections) while the workers run: a port in use fails here, at once, as with
    # uvicorn; port 0 becomes one port for all the workers.
    with _bind_or_exit(config.host, config.port, 1) as reserved:
        config.port = reserved.getsockname()[1]
        listeners = cast(list[socket.socket], [WorkerListener(config.host, config.port)])
        Multiprocess(config, sockets=listeners).run()


if __name__ == "__main__":
    main()
