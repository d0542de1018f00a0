"""AccessLog: the JsonFormatter's line, written to the handler's descriptor or through logging."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.observability.logging import ACCESS_LOGGER, AccessLog, JsonFormatter

FIELDS = {"request_id": "abc", "status": 200, "duration_ms": 0.25, "error": None}


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("app")
    saved = logger.handlers[:], logger.level
    logger.handlers[:] = []
    logger.setLevel(logging.INFO)
    yield logger
    logger.handlers[:], _ = saved
    logger.setLevel(saved[1])


def _handler(stream: io.TextIOBase) -> logging.StreamHandler[io.TextIOBase]:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def test_lines_go_to_the_handlers_file_descriptor(
    app_logger: logging.Logger, tmp_path: Path
) -> None:
    path = tmp_path / "out.log"
    with path.open("w", encoding="utf-8") as stream:
        app_logger.addHandler(_handler(stream))
        logging.getLogger("app.other").warning("before")
        access = AccessLog()
        access.write(FIELDS)
        access.write({**FIELDS, "request_id": "def"})
    first, second, third = (json.loads(line) for line in path.read_text().splitlines())
    assert first["message"] == "before"  # flushed first: the order is kept
    assert {k: second[k] for k in ("level", "logger", "message")} == {
        "level": "info",
        "logger": ACCESS_LOGGER,
        "message": "request",
    }
    assert {k: second[k] for k in FIELDS} == FIELDS
    assert third["request_id"] == "def"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", second["ts"])


def test_a_stream_without_a_descriptor_gets_the_line_through_logging(
    app_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    app_logger.addHandler(_handler(stream))
    AccessLog().write(FIELDS)
    line = json.loads(stream.getvalue())
    assert (line["logger"], line["request_id"], line["status"]) == (ACCESS_LOGGER, "abc", 200)


def test_nothing_is_written_below_the_loggers_level(
    app_logger: logging.Logger, tmp_path: Path
) -> None:
    path = tmp_path / "out.log"
    with path.open("w", encoding="utf-8") as stream:
        app_logger.addHandler(_handler(stream))
        app_logger.setLevel(logging.WARNING)
        AccessLog().write(FIELDS)
    assert path.read_text() == ""
