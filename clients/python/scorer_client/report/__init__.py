"""The visual report: metrics to a self-contained HTML page or an SVG reliability diagram.

matplotlib is imported only when a report is drawn, so that a worker that never draws
one does not pay for importing it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HTML", "REPORT_MEDIA_TYPES", "SVG", "render"]

HTML = "text/html"
SVG = "image/svg+xml"
REPORT_MEDIA_TYPES = (HTML, SVG)


def render(metrics: dict[str, Any], media_type: str) -> bytes:
    """The report of ``metrics`` (as :func:`scorer_client.metrics.aggregate_metrics` gives).

    ``media_type``: :data:`HTML` for the whole page, :data:`SVG` for the reliability
    diagram alone. Needs matplotlib (the ``report`` extra).
    """
    from scorer_client.report.page import html_page, reliability_svg

    if media_type == SVG:
        return reliability_svg(metrics).encode()
    return html_page(metrics).encode()
