"""The report's plots, drawn with matplotlib's object API (no pyplot) into SVG text.

Imported lazily by :mod:`scorer_client.report.page`: importing this module imports matplotlib.
"""

from __future__ import annotations

import io
import itertools
import math
import threading
from collections.abc import Callable
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "confidence_histogram",
    "loss_distribution",
    "per_class_accuracy",
    "precision_recall",
    "reliability",
    "roc",
]

MAX_CLASSES_SHOWN = 50
MAX_CURVES_SHOWN = 10
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#7f7f7f"
# The SVG backend keeps module state (ids, the hash salt); one drawing at a time.
_LOCK = threading.Lock()


def _svg(draw: Callable[[Axes], None], size: tuple[float, float] = (4.6, 3.4)) -> str:
    with (
        _LOCK,
        mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "scorer-report", "font.size": 9}),
    ):
        fig = Figure(figsize=size, layout="constrained")
        draw(fig.add_subplot())
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]  # inline: no XML declaration or doctype


def _bins(cal: dict[str, Any]) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    rel = cal["reliability"]
    return [b["lower"] for b in rel], [b["upper"] - b["lower"] for b in rel], rel


def reliability(metrics: dict[str, Any]) -> str:
    """Accuracy against mean confidence per bin, with the diagonal of perfect calibration."""
    cal = metrics["calibration"]
    lower, width, rel = _bins(cal)

    def draw(ax: Axes) -> None:
        acc = [b["accuracy"] or 0.0 for b in rel]
        conf = [b["mean_confidence"] if b["count"] else math.nan for b in rel]
        ax.bar(lower, acc, width, align="edge", color=BLUE, edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color=GREY, label="perfect calibration")
        ax.plot(
            [lo + w / 2 for lo, w in zip(lower, width, strict=True)],
            conf,
            "o",
            color=ORANGE,
            markersize=3,
            label="mean confidence",
        )
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
        ece = cal["ece"]
        ax.set_title("Reliability diagram" + ("" if ece is None else f" (ECE {ece:.4f})"))
        ax.legend(loc="upper left", frameon=False)

    return _svg(draw)


def confidence_histogram(metrics: dict[str, Any]) -> str:
    """Samples per confidence bin, with the accuracy and mean confidence marked."""
    lower, width, rel = _bins(metrics["calibration"])

    def draw(ax: Axes) -> None:
        ax.bar(lower, [b["count"] for b in rel], width, align="edge", color=BLUE, edgecolor="white")
        for value, color, label in (
            (metrics.get("accuracy"), GREY, "accuracy"),
            (metrics.get("mean_confidence"), ORANGE, "mean confidence"),
        ):
            if value is not None:
                ax.axvline(value, color=color, linestyle="--", label=f"{label} {value:.3f}")
        ax.set(xlim=(0, 1), xlabel="confidence (top-label probability)", ylabel="samples")
        ax.set_title("Confidence histogram")
        ax.legend(loc="upper left", frameon=False)

    return _svg(draw)


def loss_distribution(metrics: dict[str, Any]) -> str:
    """Samples per loss bin on a log axis; the first bin starts at 0, the last is open."""
    hist = metrics["loss_histogram"]
    edges = [float(e) for e in hist["edges"]]
    # Draw the bins [0, 1e-4) and [100, inf) one decade wide.
    shown = [edges[1] / 10, *edges[1:-1], edges[-2] * 10]

    def draw(ax: Axes) -> None:
        widths = [b - a for a, b in itertools.pairwise(shown)]
        ax.bar(shown[:-1], hist["count"], widths, align="edge", color=BLUE, edgecolor="white")
        ax.set_xscale("log")
        ax.set(xlabel="per-sample loss (first bin from 0, last to inf)", ylabel="samples")
        ax.set_title("Per-sample loss distribution")

    return _svg(draw)


def per_class_accuracy(metrics: dict[str, Any]) -> str:
    """Accuracy of each class with support (the least accurate, when there are many)."""
    pc = metrics["per_class"]
    rows = [
        (c, acc, n)
        for c, (acc, n) in enumerate(zip(pc["accuracy"], pc["support"], strict=True))
        if n > 0
    ]
    title = "Per-class accuracy"
    if len(rows) > MAX_CLASSES_SHOWN:
        rows = sorted(rows, key=lambda r: (r[1], r[0]))[:MAX_CLASSES_SHOWN]
        rows.sort()
        title += f" ({MAX_CLASSES_SHOWN} least accurate of {len(pc['support'])} classes)"

    def draw(ax: Axes) -> None:
        ax.bar(range(len(rows)), [r[1] for r in rows], color=BLUE)
        ax.set_xticks(range(len(rows)), [str(r[0]) for r in rows], fontsize=7)
        ax.set(ylim=(0, 1), xlabel="class", ylabel="accuracy")
        overall = metrics.get("accuracy")
        if overall is not None:
            ax.axhline(overall, color=ORANGE, linestyle="--", label=f"overall {overall:.3f}")
            ax.legend(loc="upper right", frameon=False)
        ax.set_title(title)

    return _svg(draw, (max(4.6, 0.18 * len(rows) + 1.5), 3.4))


def _curves(
    metrics: dict[str, Any], kind: str, x: str, y: str, area: str, labels: tuple[str, str]
) -> str:
    curves = metrics["curves"]
    shown = min(len(curves[kind]), MAX_CURVES_SHOWN)
    many = len(curves[kind]) > 1

    def draw(ax: Axes) -> None:
        for c in range(shown):
            points = curves[kind][c]
            value = curves[area][c]
            name = f"class {c}" if many else "positive class"
            text = "n/a" if value is None else f"{value:.4f}"
            ax.plot(points[x], points[y], linewidth=1.2, label=f"{name} ({text})")
        if kind == "roc":
            ax.plot([0, 1], [0, 1], "--", color=GREY, linewidth=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=labels[0], ylabel=labels[1])
        title = "ROC curve" if kind == "roc" else "Precision-recall curve"
        if len(curves[kind]) > shown:
            title += f" (first {shown} of {len(curves[kind])} classes)"
        ax.set_title(title)
        ax.legend(loc="lower right" if kind == "roc" else "lower left", frameon=False, fontsize=7)

    return _svg(draw)


def roc(metrics: dict[str, Any]) -> str:
    """True against false positive rate per class, with each class's ROC AUC."""
    return _curves(metrics, "roc", "fpr", "tpr", "roc_auc", ("false positive rate", "recall"))


def precision_recall(metrics: dict[str, Any]) -> str:
    """Precision against recall per class, with each class's average precision."""
    labels = ("recall", "precision")
    return _curves(metrics, "pr", "recall", "precision", "average_precision", labels)
