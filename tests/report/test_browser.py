"""The HTML report in a real browser: headless Chromium at 1280x800 renders a report of a real budgeted study
(one trial cut by its budget) beside fixture studies holding every status and long configurations.

Nothing may stick out of the page sideways (a table wider than the page scrolls inside its own box), the
best-configuration table fits without scrolling at the default cutoffs, and every plot loads. Chromium is
Debian's ``chromium`` (`chromium.find_chromium`), driven over the DevTools protocol with websocket-client;
without either the test skips, saying which is missing.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chromium import Browser, find_chromium
from report_fixtures import mg_trials, nomg_trials, write_study

from mgtune.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.ray]

WIDTH, HEIGHT = 1280, 800
REPO = Path(__file__).resolve().parents[2]
# Every element's right edge against the page's width, except inside a box that clips or scrolls sideways;
# the page's own scroll width; each image's state; each table box's widths.
LAYOUT = """(() => {
  const width = document.documentElement.clientWidth;
  const boxed = el => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement)
    if (getComputedStyle(p).overflowX !== 'visible') return true; return false; };
  const name = el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') +
    ' "' + (el.textContent || el.alt || '').trim().slice(0, 40) + '"';
  const sticking = [...document.body.querySelectorAll('*')]
    .filter(el => el.getBoundingClientRect().right > width + 0.5 && !boxed(el))
    .map(el => name(el) + ' right=' + Math.round(el.getBoundingClientRect().right));
  return {width, scrollWidth: document.documentElement.scrollWidth, sticking,
          images: [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0})),
          boxes: [...document.querySelectorAll('div.scroll')].map(d => ({
            first: d.querySelector('th').textContent, overflowX: getComputedStyle(d).overflowX,
            client: d.clientWidth, scroll: d.scrollWidth}))};
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("websocket", reason="websocket-client is not installed (pip install websocket-client)")
    binary = find_chromium()
    if binary is None:
        named = os.environ.get("MGTUNE_CHROMIUM")
        pytest.skip(f"$MGTUNE_CHROMIUM {named!r} is not a program on PATH" if named else
                    "no chromium on PATH (apt-get install chromium, or set $MGTUNE_CHROMIUM)")
    return binary


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> Path:
    """A real VBPR study its epochs budget ended (one trial at a time: the second is cut after 2 of its 3
    epochs), and two FREEDOM fixture studies on the same dataset with every status and long configurations."""
    runs = tmp_path_factory.mktemp("browser") / "runs"
    cmd = [sys.executable, "-m", "mgtune.cli", "run", "--model", "vbpr", "--dataset", "tiny", "--data-dir",
           str(tiny_dir), "--storage", str(runs), "--name", "vbpr-budgeted", "--concurrency", "1", "--trials", "4",
           "--max-epochs", "3", "--grace-epochs", "3", "--budget-epochs", "5",
           "--search-space", str(REPO / "search_spaces" / "vbpr.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((runs / "vbpr-budgeted" / "results.csv").open()))
    assert "budget_stopped" in {r["status"] for r in rows}, rows
    long_config = {"reg_weight": 1e-5, "mm_image_weight": 0.123456, "knn_k": 17, "n_mm_layers": 2, "n_ui_layers": 3}
    mg = mg_trials([("f0", "completed", 0.20, 0.18), ("f1", "completed", 0.30, 0.25), ("f2", "budget_stopped", 0.33,
                    0.40), ("f3", "early_stopped", 0.10, 0.50), ("f4", "diverged", 0, 0), ("f5", "errored", 0, 0)])
    nomg = nomg_trials([("n0", "completed", 0.22, 0.20), ("n1", "completed", 0.26, 0.21),
                        ("n2", "early_stopped", 0.10, 0.09)])
    for t in [*mg, *nomg]:
        t.params.update(long_config)
    write_study(runs, "freedom-tiny-budgeted-20260101-120000", mg, dataset="tiny", ended_by="epochs", budget_epochs=30)
    write_study(runs, "freedom-tiny-nomg-20260101-130000", nomg, dataset="tiny", mg=False)
    return runs


def _render(chromium: str, page: Path, screenshot: Path) -> dict[str, Any]:
    with Browser(chromium, WIDTH, HEIGHT) as browser:
        browser.open(page)
        layout: dict[str, Any] = browser.evaluate(LAYOUT)
        browser.screenshot(screenshot)
    assert screenshot.read_bytes().startswith(b"\x89PNG") and int.from_bytes(screenshot.read_bytes()[16:20]) == WIDTH
    return layout


def _fits(layout: dict[str, Any]) -> None:
    assert layout["width"] <= WIDTH and layout["scrollWidth"] <= WIDTH, layout
    assert layout["sticking"] == [], layout["sticking"]
    assert len(layout["images"]) >= 4 and all(i["loaded"] for i in layout["images"]), layout["images"]
    assert all(b["overflowX"] == "auto" for b in layout["boxes"]), layout["boxes"]


def test_the_report_fits_a_1280_px_window(chromium: str, storage: Path, tmp_path: Path) -> None:
    assert main(["report", "--storage", str(storage), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "tiny.html")
    assert "cut by the budget" in page.read_text().lower()
    layout = _render(chromium, page, tmp_path / "report-1280.png")
    _fits(layout)
    best = next(b for b in layout["boxes"] if b["first"] == "Model")  # the first table: best configurations
    assert best["scroll"] <= best["client"], best  # at the default cutoffs, Configuration and all, no scrolling


def test_a_wider_table_scrolls_in_its_box_not_the_page(chromium: str, storage: Path, tmp_path: Path) -> None:
    assert main(["report", "--storage", str(storage), "--out", str(tmp_path / "out"), "--k", "5,10,20,50"]) == 0
    layout = _render(chromium, tmp_path / "out" / "tiny.html", tmp_path / "report-k50.png")
    _fits(layout)
    assert any(b["scroll"] > b["client"] for b in layout["boxes"]), layout["boxes"]  # 16 metric columns do not fit
