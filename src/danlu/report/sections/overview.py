"""The page header, the summary cards, the recipe and the data (with cleaning) sections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from danlu.evaluate.summary import format_ci, lead_metrics
from danlu.report.common import e, load, num, table

__all__ = ["cleaning", "data", "header", "recipe", "summary"]


def header(d: Path, manifest: dict[str, Any]) -> str:
    stages = manifest.get("stages", {})
    badges = "".join(f'<span class="badge {e(s.get("status", ""))}">{e(name)}: '
                     f'{e(s.get("status", "?"))}</span>' for name, s in stages.items() if name != "report")
    v = manifest.get("versions", {})
    meta = " · ".join(e(x) for x in (
        f"created {manifest.get('created', '?')}", f"danlu {v.get('danlu', '?')}",
        f"torch {v.get('torch', '?')}", f"python {v.get('python', '?')}",
        f"git {str(manifest.get('git_commit') or 'unknown')[:10]}"))
    return (f'<header><div class="brand">danlu report</div><h1>{e(manifest.get("name", d.name))}'
            f'</h1><div class="meta">{e(d.name)} · {meta}</div><div class="badges">{badges}</div>'
            "</header>")


def summary(metrics: dict[str, Any] | None, pkg: dict[str, Any] | None) -> str:
    if not metrics:
        return ""
    test = metrics["test"]
    ci = test.get("ci", {})
    lead = [k for k in lead_metrics(test) if isinstance(test.get(k), float)][:4]
    cards = "".join(
        f'<div class="card"><div class="k">{e(k.replace("_", " "))}</div>'
        f'<div class="v">{test[k]:.3f}</div><div class="ci">'
        f'{"95% CI " + format_ci(test[k], ci[k]).split(" ", 1)[1] if k in ci else "&nbsp;"}'
        "</div></div>" for k in lead)
    gate = metrics.get("gate", {})
    if gate.get("checks"):
        ok = gate.get("passed")
        txt = ", ".join(f"{k} ≤ {c['max']}" if "max" in c else f"{k} ≥ {c['min']}"
                        for k, c in gate["checks"].items())
        cards += (f'<div class="card {"pass" if ok else "fail"}"><div class="k">gate</div>'
                  f'<div class="v">{"passed" if ok else "failed"}</div><div class="ci">{e(txt)}</div></div>')
    if pkg and "parity" in pkg:
        p = pkg["parity"]
        if p.get("label_agreement") is None:  # a value, not labels: its largest difference
            cards += (f'<div class="card"><div class="k">ONNX parity</div><div class="v">'
                      f'{p["max_abs_diff"]:.1e}</div><div class="ci">max |Δ value| (tolerance '
                      f'{p.get("atol")})</div></div>')
        else:
            cards += (f'<div class="card"><div class="k">ONNX parity</div><div class="v">'
                      f'{p["label_agreement"]:.1%}</div><div class="ci">labels agree; max |Δp| '
                      f'{p["max_abs_diff"]:.1e}</div></div>')
    misses = [f"{k} {c['value']:.4f} " + (f"> {c['max']}" if "max" in c else f"< {c['min']}")
              for k, c in gate.get("checks", {}).items() if not c["passed"]]
    fail = (f'<div class="failure"><b>Not packaged: the gate failed</b> on the test split '
            f'({e(", ".join(misses))}).</div>' if misses else "")
    c = (pkg or {}).get("compression")
    if isinstance(c, dict):
        fail += (f'<div class="warning"><b>package/ serves the compressed variant '
                 f'{e(c.get("variant"))}</b> (promoted by <code>danlu compress</code>); the metrics '
                 "below are the trained model's; the variant's are in the Compression section.</div>")
    warn = fail + "".join(f'<div class="warning">'
                          f'{"<b>Accuracy misleads here.</b> " if w.get("kind") == "imbalance" else ""}'
                          f'{e(w["message"])}</div>' for w in test.get("warnings", []))
    n = test.get("n")
    return (f'<section id="summary"><h2>Summary</h2>{warn}<div class="cards">{cards}</div>'
            f'<p class="note">Test split: {n} rows held out from training and model selection. '
            "Intervals: percentile bootstrap over the test rows.</p></section>")


def recipe(d: Path) -> str:
    path = d / "recipe.yaml"
    if not path.is_file():
        return ""
    import yaml

    r = yaml.safe_load(path.read_text()) or {}
    data, model, train = r.get("data", {}), r.get("model", {}), r.get("train", {})
    opt = train.get("optimizer", {})
    split = data.get("split", {})
    rows = [
        ("data", f"{data.get('source')}" + _target(data.get("target"))),
        ("split", f"val {split.get('val')}, test {split.get('test')}, stratified "
                  f"{split.get('stratify')}, seed {r.get('seed')}"),
        ("preprocess", json.dumps(r.get("preprocess", {}))),
        ("model", ", ".join(f"{k} {v}" for k, v in model.items())),
        ("train", f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, "
                  f"{opt.get('name')} lr {opt.get('lr')}, weight decay {opt.get('weight_decay')}"),
        ("early stopping", json.dumps(train.get("early_stopping", {}))),
        ("evaluate", json.dumps(r.get("evaluate", {}))),
    ]
    body = table(("section", "setting"), ((e(k), e(v)) for k, v in rows), "kv")
    return (f'<section id="recipe"><h2>Recipe</h2>{body}<details><summary>resolved recipe.yaml'
            f"</summary><pre>{e(path.read_text())}</pre></details></section>")


def data(d: Path, info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    if "target_stats" in info:
        return _regression_data(d, info)
    counts = info.get("class_counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts]
    rows = []
    for i, lab in enumerate(info["labels"]):
        per = [counts[s][i] for s in splits]
        rows.append([e(lab), *(num(c) for c in per), num(sum(per))])
    totals = [sum(counts[s]) for s in splits]
    rows.append(["<b>all</b>", *(f"<b>{t:,}</b>" for t in totals), f"<b>{sum(totals):,}</b>"])
    shape = f", images {'×'.join(map(str, info['image_shape']))}" if info.get("image_shape") else ""
    out = (f'<section id="data"><h2>Data</h2><p>{e(info.get("source"))}: {info.get("rows"):,} rows, '
           f'{e(_features(info))}{e(shape)}, {len(info["labels"])} classes'
           f'{", stratified split" if info.get("stratified") else ""}.</p>'
           f'<h3>Rows per class and split</h3>{table(("class", *splits, "total"), rows, "num")}')
    return _with_cleaning(d, out)


def _with_cleaning(d: Path, out: str) -> str:
    """The data section's text, then the cleaning table when data/cleaning.json has one."""
    clean = load(d / "data" / "cleaning.json")
    if isinstance(clean, dict) and "rows_in" in clean:
        out += cleaning(clean)
    return out + "</section>"


def _regression_data(d: Path, info: dict[str, Any]) -> str:
    """The data section of a regression: the target's spread per split instead of classes."""
    stats = info["target_stats"]
    rows = [[e(s), num(v.get("rows", 0)), *(f"{v[k]:.4g}" if k in v else "" for k in
                                           ("mean", "std", "min", "max"))]
            for s, v in stats.items()]
    out = (f'<section id="data"><h2>Data</h2><p>{e(info.get("source"))}: {info.get("rows"):,} rows, '
           f'{e(_features(info))}; regression of a number'
           f'{", split stratified on target deciles" if info.get("stratified") else ""}.</p>'
           f'<h3>Target per split</h3>{table(("split", "rows", "mean", "std", "min", "max"), rows, "num")}')
    return _with_cleaning(d, out)


def cleaning(c: dict[str, Any]) -> str:
    """What cleaning removed or flagged, by reason, and the missing cells it imputed, by column
    (data/cleaning.json)."""
    rows = [["read", num(c["rows_in"])]]
    rows += [[f"removed: {e(r)}", num(n)] for r, n in c.get("removed", {}).items()]
    rows += [[f"flagged: {e(r)}", num(n)] for r, n in c.get("flagged", {}).items()]
    rows.append(["<b>kept</b>", f"<b>{c.get('rows_out', 0):,}</b>"])
    # Cells, not rows: missing numbers imputed in the graph (preprocess.clean.missing: impute).
    rows += [[f"imputed cells: {e(col)}", num(n)] for col, n in c.get("imputed", {}).items()]
    notes = []
    conflicts = c.get("label_conflicts", {})
    if conflicts.get("rows") and conflicts.get("kept"):
        notes.append(f"{conflicts['rows']} rows share features but not targets (kept: a number "
                     "target is noisy; leakage keeps such a group out of evaluation splits)")
    elif conflicts.get("rows"):
        notes.append(f"{conflicts['rows']} rows share features but not labels (label noise, reported "
                     "separately from duplicates)")
    leak = c.get("leakage", {})
    if any(leak.values()):
        notes.append("rows duplicating a training row were removed from evaluation splits: "
                     + ", ".join(f"{s} {n}" for s, n in leak.items()))
    note = "".join(f'<p class="note">{e(n)}.</p>' for n in notes)
    return f'<h3 id="cleaning">Cleaning</h3>{table(("rows", "count"), rows, "num")}{note}'


def _features(info: dict) -> str:
    """"13 columns (number)" / "64 columns (image)" / "1 column (text)"."""
    n = info.get("columns", 0)
    types = ", ".join(f"{k}: {v}" for k, v in (info.get("feature_types") or {}).items())
    return f"{n} column{'s' if n != 1 else ''}" + (f" ({types})" if types else "")


def _target(target) -> str:
    """" (target Status, head category)" from data.target (a dict in a version-2 recipe)."""
    if isinstance(target, dict):
        column = target.get("column")
        return f" (target {column}, head {target.get('head')})" if column else \
            f" (head {target.get('head')})"
    return f" (target {target})" if target else ""
