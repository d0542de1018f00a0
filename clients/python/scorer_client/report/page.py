"""The report page: headline numbers and inline SVG plots in one self-contained HTML file."""

from __future__ import annotations

import html
from typing import Any

from scorer_client.metrics.errors import InvalidAggregate
from scorer_client.report import figures

__all__ = ["html_page", "reliability_svg"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;
background:#fff}
h1{font-size:20px;margin:0 0 12px}
h2{font-size:16px;margin:16px 0 8px}
table{border-collapse:collapse;margin:0 0 16px}
td,th{border-bottom:1px solid #ddd;padding:3px 14px 3px 0;text-align:left;font-size:14px}
td.v{font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #e4e4e4;padding:8px}
figure svg{display:block;height:auto;max-width:100%}
figcaption{font-size:12px;color:#555}
p.missing{color:#a33;font-size:14px}
"""

_SECTIONS = (
    (
        "reliability",
        "calibration",
        figures.reliability,
        "Accuracy per confidence bin: bars below the diagonal are over-confident.",
    ),
    (
        "confidence",
        "calibration",
        figures.confidence_histogram,
        "Samples per bin of top-label confidence.",
    ),
    ("loss", "loss_histogram", figures.loss_distribution, "Per-sample loss, on a log scale."),
    ("per-class", "per_class", figures.per_class_accuracy, "Accuracy of each true class."),
    ("roc", "curves", figures.roc, "ROC per class from binned probabilities (ROC AUC)."),
    ("pr", "curves", figures.precision_recall, "Precision-recall per class (average precision)."),
)
# Sections that mean nothing for a task, left out rather than reported missing.
_NOT_FOR = {"binary": {"per_class"}, "multiclass": {"curves"}}


def reliability_svg(metrics: dict[str, Any]) -> str:
    """The reliability diagram alone.

    Raises:
        InvalidAggregate: the metrics hold no calibration (aggregates without it).
    """
    if metrics.get("calibration") is None:
        raise InvalidAggregate(
            "the aggregates carry no calibration: score with metrics.calibration to draw"
            " the reliability diagram",
            ("aggregates",),
        )
    return figures.reliability(metrics)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.6g}"


def headline(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """The numbers at the top of the page, in order; absent metrics are left out."""
    binary = metrics.get("task") == "binary"
    rows: list[tuple[str, Any]] = [
        ("elements" if binary else "samples", metrics["count"]),
        ("label columns" if binary else "classes", metrics["classes"]),
        ("loss (mean)", metrics["loss"]),
        ("accuracy" + (" (p > 0.5, every element)" if binary else ""), metrics["accuracy"]),
    ]
    rows += [(f"top-{t['k']} accuracy", t["accuracy"]) for t in metrics.get("top_k") or ()]
    rows.append(("mean confidence", metrics["mean_confidence"]))
    cal = metrics.get("calibration")
    if cal is not None:
        bins = cal["bins"]
        rows += [(f"{name} ({bins} bins)", cal[key]) for name, key in _CAL]
    if "brier" in metrics:
        rows.append(("Brier score", metrics["brier"]))
    cls = metrics.get("classification")
    if cls is not None:
        rows += [(f"{name} F1", cls[name]["f1"]) for name in ("macro", "micro", "weighted")]
    curves = metrics.get("curves")
    if curves is not None:
        rows.append((f"macro ROC AUC ({curves['bins']} bins)", curves["macro_roc_auc"]))
        rows.append(("macro average precision", curves["macro_average_precision"]))
    seq = metrics.get("sequences")
    if seq is not None:
        rows += [("tokens", seq["tokens"]), ("token NLL", seq["nll"])]
        rows.append(("perplexity", seq["perplexity"]))
    return rows


_CAL = (("ECE", "ece"), ("MCE", "mce"), ("RMS calibration error", "rms"))


def html_page(metrics: dict[str, Any]) -> str:
    """The whole report: a table of headline numbers, then one figure per plot."""
    table = "\n".join(
        f'<tr><th scope="row">{html.escape(name)}</th><td class="v">{_number(v)}</td></tr>'
        for name, v in headline(metrics)
    )
    parts = []
    skip = _NOT_FOR.get(metrics.get("task", "multiclass"), set())
    for ident, needs, draw, caption in _SECTIONS:
        if needs in skip and metrics.get(needs) is None:
            continue
        if metrics.get(needs) is None:
            body = f'<p class="missing">No {html.escape(needs)} in the aggregates.</p>'
        else:
            body = draw(metrics)
        parts.append(
            f'<figure id="{ident}">{body}<figcaption>{html.escape(caption)}</figcaption></figure>'
        )
    plots = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Scorer report</title><style>{_CSS}</style></head>\n<body>"
        f'<h1>Scorer report</h1><table id="headline">{table}</table>'
        f'<div class="plots">{plots}</div>{_classification_table(metrics)}</body></html>\n'
    )


def _classification_table(metrics: dict[str, Any]) -> str:
    """Precision, recall, F1 and support per class and averaged, or "" without them."""
    cls = metrics.get("classification")
    if cls is None:
        return ""
    how = "argmax, one vs rest" if cls["threshold"] is None else f"p > {cls['threshold']:g}"
    cells = ("precision", "recall", "f1")
    head = "".join(f"<th>{h}</th>" for h in ("class", "support", "precision", "recall", "F1"))
    rows = [
        f'<tr><td>{c}</td><td class="v">{_number(support)}</td>'
        + "".join(f'<td class="v">{_number(cls[k][c])}</td>' for k in cells)
        + "</tr>"
        for c, support in enumerate(cls["support"])
    ]
    total = sum(cls["support"])
    rows += [
        f'<tr><th scope="row">{name}</th><td class="v">{_number(total)}</td>'
        + "".join(f'<td class="v">{_number(cls[name][k])}</td>' for k in cells)
        + "</tr>"
        for name in ("macro", "micro", "weighted")
    ]
    return (
        f'<h2>Classification ({html.escape(how)})</h2><table id="classification">'
        f"<tr>{head}</tr>{''.join(rows)}</table>"
    )
