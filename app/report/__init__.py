"""The visual report: metrics to a self-contained HTML page or an SVG reliability diagram.

matplotlib is imported only when a report is drawn, so that a worker that never draws
one does not pay for importing it.
"""

from __future__ import annotations

from typing import Any

from app.codecs import NotAcceptable

__all__ = [
    "REPORT_MEDIA_TYPES",
    "media_type_for_accept",
    "render",
]

HTML = "text/html"
SVG = "image/svg+xml"
REPORT_MEDIA_TYPES = (HTML, SVG)


def media_type_for_accept(value: str | None) -> str:
    """``text/html`` or ``image/svg+xml``, as Accept prefers (RFC 9110 section 12.5.1).

    Each type takes the q of the most specific range that matches it; the higher q
    wins and HTML (the whole report) wins ties. No header means HTML.

    Raises:
        NotAcceptable: Accept rules out both.
    """
    if value is None or not value.strip():
        return HTML
    quality = {HTML: (0, 0.0), SVG: (0, 0.0)}  # (specificity, q) of the best match
    for part in value.split(","):
        name, *params = (p.strip().lower() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(raw)
                except ValueError:
                    q = 0.0
        for media in quality:
            rank = _match(name, media)
            if rank > quality[media][0]:
                quality[media] = (rank, q)
    best = max((HTML, SVG), key=lambda m: (quality[m][1], m == HTML))
    if quality[best][1] <= 0:
        raise NotAcceptable(value, REPORT_MEDIA_TYPES)
    return best


def _match(media_range: str, media: str) -> int:
    """3 for the exact type, 2 for ``type/*``, 1 for ``*/*``, 0 for no match."""
    if media_range == media:
        return 3
    if media_range == media.split("/")[0] + "/*":
        return 2
    return 1 if media_range in ("*/*", "*") else 0


def render(metrics: dict[str, Any], media_type: str) -> bytes:
    """The report of ``metrics`` (as :func:`app.core.metrics.aggregate_metrics` gives)."""
    from app.report.page import html_page, reliability_svg

    if media_type == SVG:
        return reliability_svg(metrics).encode()
    return html_page(metrics).encode()
