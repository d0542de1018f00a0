"""The visual report: metrics to a self-contained HTML page or an SVG reliability diagram.

matplotlib (the optional ``report`` extra) is imported only when a report is drawn, so
the service runs without it; :func:`require_renderer` raises :class:`ReportUnavailable`
(answered 501) when it is missing.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from app.codecs import NotAcceptable

__all__ = [
    "REPORT_MEDIA_TYPES",
    "ReportUnavailable",
    "media_type_for_accept",
    "render",
    "require_renderer",
]

HTML = "text/html"
SVG = "image/svg+xml"
REPORT_MEDIA_TYPES = (HTML, SVG)
# Which media type a range in Accept selects; HTML wins ties (it is the whole report).
_RANGES = {
    "text/html": HTML,
    "text/*": HTML,
    "*/*": HTML,
    "*": HTML,
    "image/svg+xml": SVG,
    "image/*": SVG,
}


class ReportUnavailable(Exception):
    """The plotting library of the ``report`` extra is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "the report needs matplotlib, which is not installed: install the 'report'"
            " extra (pip install 'scorer[report]')"
        )


def require_renderer() -> None:
    """Raise :class:`ReportUnavailable` unless matplotlib can be imported."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ReportUnavailable


def media_type_for_accept(value: str | None) -> str:
    """``text/html`` or ``image/svg+xml``: the highest q, an exact name before a wildcard.

    Raises:
        NotAcceptable: Accept rules out both.
    """
    if value is None or not value.strip():
        return HTML
    best: tuple[float, bool, bool, str] | None = None
    for part in value.split(","):
        name, *params = (p.strip().lower() for p in part.split(";"))
        media = _RANGES.get(name)
        if media is None:
            continue
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        candidate = (q, "*" not in name, media == HTML, media)
        if q > 0 and (best is None or candidate > best):
            best = candidate
    if best is None:
        raise NotAcceptable(value, REPORT_MEDIA_TYPES)
    return best[3]


def render(metrics: dict[str, Any], media_type: str) -> bytes:
    """The report of ``metrics`` (as :func:`app.core.metrics.aggregate_metrics` gives)."""
    from app.report.page import html_page, reliability_svg

    if media_type == SVG:
        return reliability_svg(metrics).encode()
    return html_page(metrics).encode()
