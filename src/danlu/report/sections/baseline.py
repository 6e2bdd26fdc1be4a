"""The baseline section, from eval/baseline.json: the model beside scikit-learn's
HistGradientBoosting on the same test rows, both fit times and the paired comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from danlu.evaluate.summary import format_ci, lead_metrics
from danlu.report.common import e, load, num, table

__all__ = ["baseline"]


def baseline(d: Path, metrics: dict[str, Any] | None) -> str:
    b = load(d / "eval" / "baseline.json")
    if not b or not metrics:
        return ""
    ours, theirs = metrics["test"], b["test"]

    def both(k: str) -> bool:
        return isinstance(ours.get(k), float) and isinstance(theirs.get(k), float)

    names = [k for k in lead_metrics(ours) if both(k)] or [k for k in ours if both(k)]
    rows = [[f"<b>{e(k)}</b>", format_ci(ours[k], ours.get("ci", {}).get(k)),
             format_ci(theirs[k], theirs.get("ci", {}).get(k))] for k in names]
    rows.append(["fit time (s)", num(b.get("danlu_fit_seconds"), 1), num(b.get("fit_seconds"), 1)])
    c = b["comparison"]
    conf = c.get("confidence", 0.95)
    lower = "" if c["metric"] == "accuracy" else " (lower is better)"
    spec = "+.3f" if c["metric"] == "accuracy" else "+.4g"
    text = (f"<p>danlu − GBDT in test {e(c['metric'])}{lower}: <b>{c['diff']:{spec}}</b> "
            f'<span class="ci">[{c["ci"][0]:{spec}}, {c["ci"][1]:{spec}}]</span> '
            f"({conf:.0%} paired bootstrap over the same {theirs.get('n', '')} test rows, "
            f"p {c['p_value']:.3g})")
    if "mcnemar" in c:
        m = c["mcnemar"]
        text += (f"; McNemar p {m['p_value']:.3g} ({e(m['method'])}: {m['b']} rows only the GBDT "
                 f"gets right, {m['c']} only danlu)")
    text += "."
    how = (f"<p>{e(b['model'].rsplit('.', 1)[-1])} with scikit-learn's defaults, fitted on the "
           f"{e(' + '.join(b['fit_on']))} split in {b['iterations']} iterations, early stopping "
           f"{e(b['early_stopping'])}; numbers as they are (missing values included), "
           f"categories as native categoricals ({e(', '.join(b['categorical']) or 'none')}).</p>")
    return ('<section id="baseline"><h2>Baseline: a gradient-boosted tree on the same split</h2>'
            + table(("metric", f"danlu [{conf:.0%} CI]", f"GBDT [{conf:.0%} CI]"), rows, "num metrics")
            + text + "</p>" + how + "</section>")
