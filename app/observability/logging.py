"""JSON log lines on stdout: one object per line, for the service's own loggers."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

__all__ = ["ACCESS_LOGGER", "AccessLog", "JsonFormatter", "configure_logging"]

ACCESS_LOGGER = "app.access"


class _Stamps:
    """``2026-11-26T17:00:00.123Z``; one strftime per second, not per line."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        return f"{self.prefix}.{int((created - second) * 1000):03d}Z"


def _line(entry: dict[str, Any], fields: dict[str, Any] | None) -> bytes:
    if fields:
        entry.update(fields)
    return orjson.dumps(entry, default=str)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...fields}``; extra fields come in ``fields``."""

    def __init__(self) -> None:
        super().__init__()
        self._stamp = _Stamps()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _line(entry, getattr(record, "fields", None)).decode()


class AccessLog:
    """The access line of each request, in the format above, with one ``write(2)``.

    Through ``logging`` every line pays for a record, the handler's lock, the formatter,
    ``write`` and ``flush``; this builds the line with orjson and writes it once, for a
    fraction of that (bench/README.md, design decisions). Nothing is buffered, so a
    crash loses no line, and a line shorter than ``PIPE_BUF`` (4 KiB) reaches a pipe
    whole, so workers sharing stdout never interleave inside a line. It writes to the
    file descriptor of the handler ``configure_logging`` installed; without one (a test
    capturing stdout) the line goes through ``logging`` as before.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self._stamp = _Stamps()
        self._fd: int | None = None

    def write(self, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fd = self._fd if self._fd is not None else self._find_fd()
        if fd < 0:
            self.logger.info("request", extra={"fields": fields})
            return
        entry = {
            "ts": self._stamp(time.time()),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": "request",
        }
        view = memoryview(_line(entry, fields) + b"\n")
        try:
            while view:  # a blocking descriptor writes it all at once
                view = view[os.write(fd, view) :]
        except OSError:
            pass  # as logging does: a lost line must not fail the request

    def _find_fd(self) -> int:
        self._fd = -1
        for handler in logging.getLogger("app").handlers:
            if isinstance(handler, logging.StreamHandler) and isinstance(
                handler.formatter, JsonFormatter
            ):
                try:
                    handler.flush()
                    self._fd = handler.stream.fileno()
                except (AttributeError, OSError, ValueError):
                    pass
                break
        return self._fd


def configure_logging(level: str, access_log: bool) -> None:
    """Send the ``app`` loggers to stdout as JSON; silence uvicorn's access log if ours is on."""
    logger = logging.getLogger("app")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    # One line per request is ours (with the request id and timings); uvicorn's would repeat it.
    logging.getLogger("uvicorn.access").disabled = access_log
    # Record attributes no line here prints, each looked up for every record (the logging
    # HOWTO's "Optimization" section): a sizeable part of each line's cost (bench/README.md).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller frame walk
