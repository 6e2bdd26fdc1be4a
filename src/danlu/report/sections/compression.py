"""The compression section, from compress/pareto.json: every variant measured and gated, two
scatter plots with the Pareto front and the chosen variant, the distillation gain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import danlu.report.plots as plots
from danlu.report.common import e, figure, load, num, table

__all__ = ["compression"]


def _ci(v: float, ci: list[float] | None, digits: int = 4, sign: bool = False) -> str:
    fmt = f"{{:{'+' if sign else ''}.{digits}f}}"
    s = fmt.format(v)
    return s + (f' <span class="ci">[{fmt.format(ci[0])}, {fmt.format(ci[1])}]</span>' if ci else "")


def _p(p: float | None) -> str:
    return "—" if p is None else ("&lt;0.001" if p < 0.001 else f"{p:.3f}")


def _vs_baseline(r: dict[str, Any]) -> str:
    v = r.get("vs_baseline")
    if not v:
        return "reference"
    flag = ' <b class="bad">worse</b>' if v.get("significantly_worse") else ""
    if "accuracy_diff" in v:  # a proportion: in points, with McNemar's test
        return f'{_ci(v["accuracy_diff"] * 100, v["ci"] and [c * 100 for c in v["ci"]], 2, True)} pt' \
               f'<br><span class="ci">McNemar p {_p(v.get("mcnemar_p"))}</span>{flag}'
    (key,) = [k for k in v if k.endswith("_diff")]
    return (f'{key.removesuffix("_diff")} {_ci(v[key], v["ci"], 4, True)}'
            f'<br><span class="ci">bootstrap p {_p(v.get("bootstrap_p"))}</span>{flag}')


def _status(r: dict[str, Any], chosen: str) -> str:
    tag = ' <span class="tag chosen">chosen</span>' if r["name"] == chosen else ""
    if r.get("passed"):
        return f'<span class="ok">passed</span>{tag}'
    reasons = "".join(f"<li>{e(x)}</li>" for x in r.get("reasons", []))
    return f'<span class="bad">rejected</span><ul class="reasons">{reasons}</ul>'


def _metric(r: dict[str, Any]) -> str:
    """The metric a row was gated on (rows before it was named: accuracy)."""
    return r.get("metric", "accuracy")


def _row(r: dict[str, Any], chosen: str) -> list[str]:
    steps = ", ".join(r.get("steps") or []) or ("the run's model, fp32" if r["name"] == "baseline" else "")
    if r.get("from") not in (None, "baseline"):
        steps = f"from {r['from']}: {steps}"
    return [f'<b>{e(r["name"])}</b><br><span class="ci">{e(steps)}</span>',
            _ci(r[_metric(r)], r.get(f"{_metric(r)}_ci")), _vs_baseline(r),
            f'{num(r["params"])}<br><span class="ci">{num(r["nonzero_params"])} non-zero</span>',
            f'{r["size_bytes"] / 1e3:,.1f}<br>'
            f'<span class="ci">{r["deflated_bytes"] / 1e3:,.1f} zipped</span>',
            f'{r["b1_ms"]:.3f}', f'{r["b32_ms"]:.3f}', f'{r["throughput_rows_s"]:,.0f}',
            _status(r, chosen)]


def _distillation(rows: list[dict[str, Any]]) -> str:
    items = []
    for r in rows:
        g = r.get("distillation_gain")
        if not g:
            continue
        verdict = ("a significant gain" if g["significant"] else
                   "no significant difference" if g["ci"][0] <= 0 <= g["ci"][1] else "a significant loss")
        m = g.get("metric", "accuracy")
        if "mcnemar_p" in g:  # labels: in points, with McNemar's test
            gain = (f'{_ci(g[f"{m}_gain"] * 100, [c * 100 for c in g["ci"]], 2, True)} pt (95% '
                    f'paired bootstrap), McNemar p {_p(g["mcnemar_p"])}')
        else:
            gain = (f'{_ci(g[f"{m}_gain"], g["ci"], 4, True)} (positive: better; 95% paired '
                    f'bootstrap, p {_p(g.get("bootstrap_p"))})')
        items.append(
            f'<li><b>{e(r["name"])}</b>: test {e(m)} {g[f"distilled_{m}"]:.4f} distilled vs '
            f'{g[f"undistilled_{m}"]:.4f} for the same student trained alone (same seed, '
            f'epochs and data): gain {gain} — {verdict}.</li>')
    if not items:
        return ""
    return f'<h3>Distillation gain</h3><ul class="gains">{"".join(items)}</ul>'


def compression(d: Path) -> str:
    doc = load(d / "compress" / "pareto.json")
    if not isinstance(doc, dict) or not isinstance(doc.get("variants"), list):
        return ""
    rows = [r for r in doc["variants"] if isinstance(r, dict) and _metric(r) in r]
    metric = _metric(rows[0]) if rows else "accuracy"
    chosen = doc.get("chosen")
    budget = doc.get("budget", {})
    lat = doc.get("latency", {})
    promoted = doc.get("promoted")
    where = (f"promoted: <code>package/</code> now holds <b>{e(chosen)}</b> (the original is in "
             "<code>package.orig/</code>)" if promoted else
             "not promoted (<code>compress.promote: false</code>, or the baseline was chosen): "
             "<code>package/</code> is the run's own model")
    applied = doc.get("budget_applied")
    if applied:  # the limits that were applied: the metric's, and labels' only where gated
        labels = any("label_agreement_with_parent" in g for r in rows
                     for g in (r.get("vs_parent") or {}).values())
        skip = {"metric", "max_metric_drop", "max_accuracy_drop",
                *(() if labels else ("min_label_agreement",))}
        kind = next((g["drop_kind"] for r in rows for g in (r.get("vs_parent") or {}).values()
                     if "drop_kind" in g), None)
        limits = ", ".join([f"max_metric_drop {applied['max_metric_drop']} on "
                            f"{applied['metric']}" + (f" ({kind})" if kind else ""),
                            *(f"{k} {v}" for k, v in budget.items()
                              if v is not None and k not in skip)])
    else:
        limits = ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None)
    out = ('<section id="compression"><h2>Compression</h2>'
           f'<p>Chosen: <b>{e(chosen)}</b> — {e("; ".join(doc.get("why", [])))}. It is {where}.</p>'
           f'<p class="note">Budget: {e(limits)}. Test {e(metric)} with its 95% bootstrap '
           f'interval; the difference to the baseline on the same rows with a paired bootstrap '
           f'interval. ONNX Runtime latency: median of {lat.get("runs", "?")} runs, '
           f'{lat.get("threads", "?")} threads.</p>')
    if rows:
        out += '<div class="row pair">' + figure(plots.pareto(
            rows, "b32_ms", "latency at batch 32 as served (ms)", doc.get("front_accuracy_latency", []),
            chosen), f"{metric} vs latency: the line joins the Pareto front of passing variants")
        out += figure(plots.pareto(
            rows, "deflated_bytes", "size on disk, zipped (KB)", doc.get("front_accuracy_size", []),
            chosen, x_scale=1e-3), f"{metric} vs size; the chosen variant is ringed") + "</div>"
        head = ("variant", f"{metric} [95% CI]", "vs baseline [95% CI]", "params", "size KB",
                "b1 ms", "b32 ms", "rows/s", "gates")
        out += table(head, (_row(r, chosen) for r in rows), "num variants")
        front = doc.get("front") or []
        out += (f'<p class="note">Pareto front over {e(metric)}, latency and size (passing variants): '
                f'{e(", ".join(front))}.</p>')
        out += _distillation(rows)
    return out + "</section>"
