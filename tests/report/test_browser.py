"""The report as a person sees it: rendered by headless Chromium, screenshot checked.

Needs Debian's ``chromium`` (``apt-get install -y chromium``). Without it the test skips
with the reason; with ``CI=true`` it fails instead, so CI cannot pass without looking.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

FIGURES = ("reliability", "confidence", "loss", "per-class")
WIDTH, HEIGHT = 1280, 1400
BLUE = np.array([0x1F, 0x77, 0xB4])  # matplotlib's C0: the bars of every plot
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    f"--window-size={WIDTH},{HEIGHT}",
)
# Appended to the page: after layout, write each figure's box where --dump-dom sees it.
PROBE = """<script>
addEventListener("load", () => {
  const boxes = {};
  for (const f of document.querySelectorAll("figure")) {
    const r = f.getBoundingClientRect();
    boxes[f.id] = {x: r.x, y: r.y, w: r.width, h: r.height, svg: f.querySelectorAll("svg").length};
  }
  const out = document.createElement("pre");
  out.id = "boxes"; out.hidden = true; out.textContent = JSON.stringify(boxes);
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "headless Chromium not found: apt-get install -y chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (required when CI=true)")
    pytest.skip(reason)


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture
def page(client: Any, tmp_path: Path) -> Path:
    """The report of a realistic batch, fetched from the API, with the layout probe."""
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 10, size=1000)
    logits = 2.5 * rng.normal(size=(1000, 10)) + 3.0 * np.eye(10)[labels]
    response = client.post(
        "/v1/report", json={"logits": logits.tolist(), "labels": labels.tolist()}
    )
    assert response.status_code == 200
    path = tmp_path / "report.html"
    path.write_text(response.text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return path


def test_report_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    browser = _chromium()
    url = page.as_uri()
    dom = _run(browser, tmp_path / "profile-dom", "--dump-dom", url).stdout
    match = re.search(r'<pre id="boxes" hidden="">(.*?)</pre>', dom)
    assert match, "the page did not finish loading in Chromium"
    boxes = json.loads(match.group(1))
    assert sorted(boxes) == sorted(FIGURES)
    shot = tmp_path / "report.png"
    _run(browser, tmp_path / "profile-shot", f"--screenshot={shot}", url)
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert np.count_nonzero(np.any(image < 200, axis=2)) > 0.02 * WIDTH * HEIGHT, "blank page"
    for ident, box in boxes.items():
        assert box["svg"] == 1, f"{ident}: no plot"
        assert box["w"] > 200, f"{ident}: not laid out ({box})"
        assert box["h"] > 150, f"{ident}: not laid out ({box})"
        assert box["y"] + box["h"] <= HEIGHT, f"{ident}: below the screenshot ({box})"
        x, y, w, h = (round(box[k]) for k in ("x", "y", "w", "h"))
        crop = image[y : y + h, x : x + w]
        ink = np.count_nonzero(np.any(crop < 200, axis=2))
        bars = np.count_nonzero(np.all(np.abs(crop - BLUE) <= 8, axis=2))
        assert ink > 0.03 * w * h, f"{ident}: blank ({ink} dark pixels)"
        assert bars > 500, f"{ident}: no bars drawn ({bars} pixels of the bar colour)"
