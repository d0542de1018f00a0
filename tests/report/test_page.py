"""The report page and its plots, without a browser."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scorer_client.metrics import InvalidAggregate
from scorer_client.report import render
from scorer_client.report.page import headline, html_page, reliability_svg

from app.core import LossOptions
from app.core.metrics import (
    MetricOptions,
    aggregate_metrics,
    evaluate_binary_cross_entropy,
    evaluate_cross_entropy,
)

ALL = MetricOptions(
    calibration_bins=10, brier=True, top_k=(1, 5), per_class=True, loss_histogram=True
)


def _metrics(n: int = 200, c: int = 8, seed: int = 0, **kw: object) -> dict:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n)
    logits = rng.normal(size=(n, c)) + np.eye(c)[labels]
    opts = MetricOptions(**{**ALL.__dict__, **kw})
    return evaluate_cross_entropy(logits, labels, LossOptions(), opts).metrics


def test_headline_order_and_values() -> None:
    m = _metrics()
    rows = dict(headline(m))
    names = [name for name, _ in headline(m)]
    assert names[:4] == ["samples", "classes", "loss (mean)", "accuracy"]
    assert rows["top-5 accuracy"] == m["top_k"][1]["accuracy"]
    assert rows["ECE (10 bins)"] == m["calibration"]["ece"]
    assert rows["Brier score"] == m["brier"]


def test_headline_of_sequences() -> None:
    logits = np.zeros((2, 3, 4))
    m = evaluate_cross_entropy(
        logits, np.zeros((2, 3), int), LossOptions(), MetricOptions(sequences=True)
    ).metrics
    rows = dict(headline(m))
    assert rows["tokens"] == 6
    assert rows["perplexity"] == pytest.approx(4.0, rel=1e-12)
    assert ">perplexity<" in html_page(m)


def test_undefined_numbers_read_na() -> None:
    agg = {
        "classes": 2,
        "count": 0,
        "correct": 0,
        "loss_sum": 0.0,
        "total_weight": 0.0,
        "confidence_sum": 0.0,
    }
    page = html_page(aggregate_metrics(agg))
    assert '<th scope="row">loss (mean)</th><td class="v">n/a</td>' in page


def test_many_classes_show_the_least_accurate() -> None:
    m = _metrics(n=2000, c=120, seed=1)
    page = html_page(m)
    assert "50 least accurate of 120 classes" in page


def test_rendering_is_deterministic() -> None:
    m = _metrics()
    assert render(m, "text/html") == render(m, "text/html")
    assert render(m, "image/svg+xml") == reliability_svg(m).encode()


def test_every_plot_present() -> None:
    page = html_page(_metrics())
    ids = re.findall(r'<figure id="([a-z-]+)"><svg', page)
    assert ids == ["reliability", "confidence", "loss", "per-class"]


def test_svg_needs_calibration() -> None:
    with pytest.raises(InvalidAggregate, match="no calibration"):
        reliability_svg(_metrics(calibration_bins=None))


def _binary_metrics(columns: int) -> dict:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=(300, columns)).astype(float)
    logits = rng.normal(size=(300, columns)) + 2 * (labels - 0.5)
    opts = MetricOptions(
        calibration_bins=10, brier=True, loss_histogram=True, classification=True, curve_bins=100
    )
    return evaluate_binary_cross_entropy(logits, labels, LossOptions(), opts).metrics


def test_binary_report_has_curves_and_the_classification_table() -> None:
    m = _binary_metrics(3)
    page = html_page(m)
    for ident in ("reliability", "roc", "pr", "classification"):
        assert f'id="{ident}"' in page
    assert 'id="per-class"' not in page  # a multiclass plot: left out, not "missing"
    rows = dict(headline(m))
    assert rows["elements"] == 900
    assert rows["macro F1"] == m["classification"]["macro"]["f1"]
    assert rows["macro ROC AUC (100 bins)"] == m["curves"]["macro_roc_auc"]
    table = page[page.index('id="classification"') :]
    assert table.count("<tr>") == 1 + 3 + 3  # header, 3 classes, macro / micro / weighted
    assert "p &gt; 0.5" in page


def test_multiclass_report_without_curves_does_not_ask_for_them() -> None:
    page = html_page(_metrics())
    assert 'id="roc"' not in page
    assert 'id="per-class"' in page
