"""JSON log lines on stdout: one object per line, for the service's own loggers."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

__all__ = ["ACCESS_LOGGER", "JsonFormatter", "configure_logging"]

ACCESS_LOGGER = "app.access"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...fields}``; extra fields come in ``fields``."""

    _second = -1
    _stamp = ""

    def _seconds(self, created: float) -> str:
        # One strftime per second, not per line: lines come hundreds per second.
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": f"{self._seconds(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


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
    # HOWTO's "Optimization" section); together about a third of an access-log line's cost.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller frame walk
