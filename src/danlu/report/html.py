"""report.html: one self-contained page per run (inline CSS and SVG, no scripts, no network).

Reads only the run folder. Every section renders from the files it needs and is left out when
they are missing, so a run that stopped at the gate still gets a report, and the tuning and
compression sections appear once those stages have written their files. The sections live in
report/sections/ (one module per group); this module assembles the page.
"""

from __future__ import annotations

from pathlib import Path

from danlu.errors import DanluError
from danlu.report.common import e, load
from danlu.report.sections.baseline import baseline
from danlu.report.sections.compression import compression
from danlu.report.sections.model import calibration, confusion, curves, metrics, mistakes, residuals, training
from danlu.report.sections.overview import data, header, recipe, summary
from danlu.report.sections.package import package
from danlu.report.sections.tuning import tuning
from danlu.report.style import CSS
from danlu.runs import atomic_write

__all__ = ["render", "write_report"]


def write_report(run_dir: str | Path) -> Path:
    """Render RUN/report.html from the run folder and write it atomically; returns its path."""
    run_dir = Path(run_dir)
    return atomic_write(run_dir / "report.html", render(run_dir))


TITLES = {"summary": "Summary", "recipe": "Recipe", "data": "Data", "training": "Training",
          "metrics": "Metrics", "baseline": "Baseline", "confusion": "Confusion",
          "curves": "ROC / PR", "calibration": "Calibration", "residuals": "Predictions",
          "mistakes": "Mistakes", "tuning": "Tuning", "compression": "Compression",
          "package": "Package"}


def render(run_dir: str | Path) -> str:
    """The whole page as one HTML string."""
    d = Path(run_dir)
    manifest = load(d / "manifest.json")
    if manifest is None:
        raise DanluError(f"{d}: not a danlu run folder (no manifest.json); pass a folder made by "
                         "`danlu run`")
    info = load(d / "data" / "info.json")
    m = load(d / "eval" / "metrics.json")
    pkg = load(d / "package" / "danlu-model.json")
    labels = info["labels"] if info else []
    parts = {
        "summary": summary(m, pkg), "recipe": recipe(d), "data": data(d, info),
        "training": training(d), "metrics": metrics(d, m, labels), "baseline": baseline(d, m),
        "confusion": confusion(m, labels), "curves": curves(d, m),
        "calibration": calibration(m), "residuals": residuals(d), "mistakes": mistakes(d, info),
        "tuning": tuning(d), "compression": compression(d), "package": package(d, pkg),
    }
    nav = "".join(f'<a href="#{k}">{TITLES[k]}</a>' for k, v in parts.items() if v)
    body = "".join(v for v in parts.values() if v)
    name = manifest.get("name", d.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(name)} — danlu report</title>
<style>{CSS}</style></head>
<body>{header(d, manifest)}<nav>{nav}</nav><main>{body}</main>
<footer>Made by <code>danlu report</code> from {e(d.name)}. One file: plots are inline SVG,
no scripts, no network; it reads the same offline.</footer></body></html>
"""
