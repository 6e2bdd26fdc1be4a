"""The report in a real browser: headless Chromium (Debian's, driven by Playwright) renders
every plot, loads no broken image and fetches nothing from the network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("DANLU_CHROMIUM", "/usr/bin/chromium")
INSTALL = ("install Debian's chromium (`apt-get install -y chromium`) and the dev extra "
           "(`pip install -e .[dev]`, which brings playwright); .ci/run does both")


def _browser(p):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM}: {INSTALL}")
    return p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


def test_report_renders_its_plots_in_chromium(digits_run, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason=f"playwright missing: {INSTALL}")
    report = digits_run.run_dir / "report.html"
    requests, errors = [], []
    with sync_api.sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        heads = page.locator("h2").all_inner_texts()
        plots = page.eval_on_selector_all(
            "svg.plot", "els => els.map(e => { const r = e.getBoundingClientRect();"
                        " return [e.closest('section').id, r.width, r.height]; })")
        # Raster images inside the SVGs (the misclassified digits) and any <img> must have loaded.
        svg_images = page.eval_on_selector_all(
            "svg image", "els => els.map(e => { const b = e.getBBox(); return [b.width, b.height,"
                         " (e.getAttribute('xlink:href') || e.getAttribute('href') || '').slice(0, 22)]; })")
        broken = page.eval_on_selector_all(
            "img", "els => els.filter(e => !e.complete || e.naturalWidth === 0).length")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        height = page.evaluate("document.body.scrollHeight")
        browser.close()
    if os.environ.get("DANLU_SCREENSHOT"):  # keep a copy to look at
        shutil.copy(shot, os.environ["DANLU_SCREENSHOT"])
    for h in ("Summary", "Training", "Metrics", "Confusion matrix (test)",
              "ROC and precision-recall curves (test)", "Calibration (test)", "Worst mistakes (test)"):
        assert h in heads
    assert {s for s, _, _ in plots} == {"training", "confusion", "curves", "calibration", "mistakes"}
    assert all(w > 100 and h > 80 for _, w, h in plots), plots
    assert svg_images and all(w > 0 and h > 0 and src == "data:image/png;base64," for w, h, src in svg_images)
    assert broken == 0
    assert [u for u in requests if not u.startswith("file://")] == []  # nothing but the file itself
    assert errors == []
    assert shot.stat().st_size > 50_000 and height > 3000  # a full page, not a blank one
