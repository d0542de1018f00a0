"""Live servers for the client tests: one as shipped, one with a small body limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer, live_server

SMALL_LIMIT = 40_000


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("client")) as live:
        yield live


@pytest.fixture(scope="package")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose body limit makes a few thousand rows too large for one request."""
    env = {"SCORER_MAX_BODY_BYTES": str(SMALL_LIMIT)}
    with live_server(tmp_path_factory.mktemp("client-small"), env) as live:
        yield live
