"""Fixtures shared by the test packages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module wants changed; override this fixture to set them."""
    return {}


@pytest.fixture
def client(settings_overrides: dict[str, Any]) -> Iterator[Any]:
    """A TestClient of an app built with the test's settings (lifespan run)."""
    # Imported here so that tests of the core and codecs do not need the web stack.
    from fastapi.testclient import TestClient

    from app.api import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(**settings_overrides))) as test_client:
        yield test_client
