"""Accept negotiation of the report: HTML or SVG."""

from __future__ import annotations

import pytest

from app.api.metrics import media_type_for_accept
from app.codecs import NotAcceptable

HTML, SVG = "text/html", "image/svg+xml"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(None, HTML, id="absent"),
        pytest.param("  ", HTML, id="blank"),
        pytest.param("*/*", HTML, id="anything"),
        pytest.param("*", HTML, id="bare-star"),
        pytest.param("text/html", HTML, id="html"),
        pytest.param("text/*", HTML, id="text-any"),
        pytest.param("image/svg+xml", SVG, id="svg"),
        pytest.param("image/*", SVG, id="image-any"),
        pytest.param("image/svg+xml, text/html", HTML, id="tie-html"),
        pytest.param("image/svg+xml, text/html;q=0.9", SVG, id="q"),
        pytest.param("text/html;q=0, */*", SVG, id="html-refused"),
        pytest.param("text/html;q=zz, image/svg+xml;q=0.1", SVG, id="bad-q-is-0"),
        pytest.param("application/json, IMAGE/SVG+XML;Q=0.5", SVG, id="case"),
        pytest.param("*/*;q=0.1, image/svg+xml;q=0", HTML, id="specific-wins"),
    ],
)
def test_media_type(accept: str | None, expected: str) -> None:
    assert media_type_for_accept(accept) == expected


@pytest.mark.parametrize(
    "accept", ["application/json", "image/png", "*/*;q=0", "text/html;q=0, image/*;q=0"]
)
def test_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="text/html, image/svg"):
        media_type_for_accept(accept)
