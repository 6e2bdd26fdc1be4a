"""report.html: one self-contained page per run (inline CSS and SVG, no scripts, no network).

Reads only the run folder. Every section renders from the files it needs and is left out when
they are missing, so a run that stopped at the gate still gets a report, and the tuning and
compression sections appear once those stages have written their files.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from danlu.errors import DanluError
from danlu.evaluate.summary import format_ci, lead_metrics
from danlu.report import plots
from danlu.runs import atomic_write, read_json

__all__ = ["render", "write_report"]

MAX_MISTAKES = 24


def write_report(run_dir: str | Path) -> Path:
    """Render RUN/report.html from the run folder and write it atomically; returns its path."""
    run_dir = Path(run_dir)
    return atomic_write(run_dir / "report.html", render(run_dir))


def e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any, digits: int = 3) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return e(v)
    if isinstance(v, int):
        return f"{v:,}"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def _load(path: Path) -> Any | None:
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]], cls: str = "") -> str:
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out: list[tuple[str, Any]] = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(d, list) and d and all(isinstance(v, dict) for v in d):
        return [(prefix, f"{len(d)} entries")]
    return [(prefix, d)]


def _kv(d: dict[str, Any], limit: int = 40) -> str:
    rows = [(e(k), _num(v) if isinstance(v, (int, float)) else e(
        json.dumps(v) if isinstance(v, (list, dict)) else v)) for k, v in _flatten(d)[:limit]]
    return _table(("key", "value"), rows, "kv")


def _records(items: list[dict[str, Any]], limit: int = 30) -> str:
    """A list of JSON objects as a table over their scalar (and flattened) fields."""
    flat = [dict(_flatten(it)) for it in items[:limit]]
    keys: list[str] = []
    for f in flat:
        keys += [k for k, v in f.items() if k not in keys and not isinstance(v, (list, dict))]
    keys = keys[:12]
    return _table(keys, ([_num(f.get(k, "")) for k in keys] for f in flat))


def _figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure>{svg}{cap}</figure>'


# ---------------------------------------------------------------- sections

def _header(d: Path, manifest: dict[str, Any]) -> str:
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


def _summary(metrics: dict[str, Any] | None, pkg: dict[str, Any] | None) -> str:
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
        txt = ", ".join(f"{k} ≥ {c['min']}" for k, c in gate["checks"].items())
        cards += (f'<div class="card {"pass" if ok else "fail"}"><div class="k">gate</div>'
                  f'<div class="v">{"passed" if ok else "failed"}</div><div class="ci">{e(txt)}</div></div>')
    if pkg and "parity" in pkg:
        p = pkg["parity"]
        cards += (f'<div class="card"><div class="k">ONNX parity</div><div class="v">'
                  f'{p["label_agreement"]:.1%}</div><div class="ci">labels agree; max |Δp| '
                  f'{p["max_abs_diff"]:.1e}</div></div>')
    misses = [f"{k} {c['value']:.4f} < {c['min']}" for k, c in gate.get("checks", {}).items()
              if not c["passed"]]
    fail = (f'<div class="failure"><b>Not packaged: the gate failed</b> on the test split '
            f'({e(", ".join(misses))}).</div>' if misses else "")
    warn = fail + "".join(f'<div class="warning"><b>Accuracy misleads here.</b> {e(w["message"])}</div>'
                   for w in test.get("warnings", []))
    n = test.get("n")
    return (f'<section id="summary"><h2>Summary</h2>{warn}<div class="cards">{cards}</div>'
            f'<p class="note">Test split: {n} rows held out from training and model selection. '
            "Intervals: percentile bootstrap over the test rows.</p></section>")


def _recipe(d: Path) -> str:
    path = d / "recipe.yaml"
    if not path.is_file():
        return ""
    import yaml

    r = yaml.safe_load(path.read_text()) or {}
    data, model, train = r.get("data", {}), r.get("model", {}), r.get("train", {})
    opt = train.get("optimizer", {})
    split = data.get("split", {})
    rows = [
        ("data", f"{data.get('source')}" + (f" (target {data.get('target')})" if data.get("target") else "")),
        ("split", f"val {split.get('val')}, test {split.get('test')}, stratified "
                  f"{split.get('stratify')}, seed {r.get('seed')}"),
        ("preprocess", json.dumps(r.get("preprocess", {}))),
        ("model", ", ".join(f"{k} {v}" for k, v in model.items())),
        ("train", f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, "
                  f"{opt.get('name')} lr {opt.get('lr')}, weight decay {opt.get('weight_decay')}"),
        ("early stopping", json.dumps(train.get("early_stopping", {}))),
        ("evaluate", json.dumps(r.get("evaluate", {}))),
    ]
    body = _table(("section", "setting"), ((e(k), e(v)) for k, v in rows), "kv")
    return (f'<section id="recipe"><h2>Recipe</h2>{body}<details><summary>resolved recipe.yaml'
            f"</summary><pre>{e(path.read_text())}</pre></details></section>")


def _data(d: Path, info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    counts = info.get("class_counts", {})
    splits = [s for s in ("train", "val", "test") if s in counts]
    rows = []
    for i, lab in enumerate(info["labels"]):
        per = [counts[s][i] for s in splits]
        rows.append([e(lab), *(_num(c) for c in per), _num(sum(per))])
    totals = [sum(counts[s]) for s in splits]
    rows.append(["<b>all</b>", *(f"<b>{t:,}</b>" for t in totals), f"<b>{sum(totals):,}</b>"])
    shape = f", images {'×'.join(map(str, info['image_shape']))}" if info.get("image_shape") else ""
    out = (f'<section id="data"><h2>Data</h2><p>{e(info.get("source"))}: {info.get("rows"):,} rows, '
           f'{info.get("features")} features{e(shape)}, {len(info["labels"])} classes'
           f'{", stratified split" if info.get("stratified") else ""}.</p>'
           f'<h3>Rows per class and split</h3>{_table(("class", *splits, "total"), rows, "num")}')
    cleaning = _load(d / "data" / "cleaning.json")
    if isinstance(cleaning, dict) and "rows_in" in cleaning:
        out += _cleaning(cleaning)
    return out + "</section>"


def _cleaning(c: dict[str, Any]) -> str:
    """What cleaning removed or flagged, by reason (data/cleaning.json)."""
    rows = [["read", _num(c["rows_in"])]]
    rows += [[f"removed: {e(r)}", _num(n)] for r, n in c.get("removed", {}).items()]
    rows += [[f"flagged: {e(r)}", _num(n)] for r, n in c.get("flagged", {}).items()]
    rows.append(["<b>kept</b>", f"<b>{c.get('rows_out', 0):,}</b>"])
    notes = []
    conflicts = c.get("label_conflicts", {})
    if conflicts.get("rows"):
        notes.append(f"{conflicts['rows']} rows share features but not labels (label noise, reported "
                     "separately from duplicates)")
    leak = c.get("leakage", {})
    if any(leak.values()):
        notes.append("rows duplicating a training row were removed from evaluation splits: "
                     + ", ".join(f"{s} {n}" for s, n in leak.items()))
    note = "".join(f'<p class="note">{e(n)}.</p>' for n in notes)
    return f'<h3 id="cleaning">Cleaning</h3>{_table(("rows", "count"), rows, "num")}{note}'



def _training(d: Path) -> str:
    history = _jsonl(d / "train" / "history.jsonl")
    if not history:
        return ""
    s = _load(d / "train" / "summary.json") or {}
    txt = ""
    if s:
        txt = (f"<p>{s.get('epochs_run')} epochs in {s.get('seconds', 0):.1f} s; best "
               f"{e(s.get('metric'))} {_num(s.get('best_value'))} at epoch {s.get('best_epoch')}"
               f"{' (stopped early)' if s.get('stopped_early') else ''}. The weights of the best "
               "epoch are the model evaluated below.</p>")
    return (f'<section id="training"><h2>Training</h2>{txt}'
            f"{_figure(plots.training(history))}</section>")


def _metrics(d: Path, metrics: dict[str, Any] | None, labels: list[str]) -> str:
    if not metrics:
        return ""
    test, val = metrics["test"], metrics.get("val", {})
    ci = test.get("ci", {})
    conf = test.get("ci_method", {}).get("confidence", 0.95)
    rows = [[f"<b>{e(k)}</b>", format_ci(test[k], ci.get(k)),
             _num(val[k]) if isinstance(val.get(k), float) else ""]
            for k in lead_metrics(test) if isinstance(test.get(k), float)]
    out = (f'<section id="metrics"><h2>Metrics</h2>'
           f'{_table(("metric", f"test [{conf:.0%} CI]", "validation"), rows, "num metrics")}')
    per = test.get("per_class", {})
    if per:
        def bar(v: float) -> str:
            return (f'<span class="bar"><span style="width:{max(0.0, min(1.0, v)) * 100:.1f}%">'
                    f"</span></span> {v:.3f}")

        prow = [[e(lab), bar(p["precision"]), bar(p["recall"]), bar(p["f1"]), _num(p["support"])]
                for lab, p in per.items()]
        head = ("class", "precision", "recall", "F1", "support")
        out += f'<h3>Per class (test)</h3>{_table(head, prow, "num")}'
    ext = sorted((d / "eval").glob("external-*.json"))
    if ext:
        erows = []
        for f in ext:
            m = _load(f) or {}
            if "accuracy" in m:
                c = m.get("ci", {})
                erows.append([e(m.get("source", f.name)), e(m.get("model", "")), _num(m.get("n")),
                              format_ci(m["accuracy"], c.get("accuracy")),
                              format_ci(m["f1_macro"], c.get("f1_macro")),
                              "⚠ imbalance" if m.get("warnings") else ""])
        out += ("<h3>Other data sets (danlu evaluate)</h3>"
                + _table(("data", "model", "rows", "accuracy", "macro-F1", ""), erows, "num"))
    return out + "</section>"


def _confusion(metrics: dict[str, Any] | None, labels: list[str]) -> str:
    if not metrics or "confusion_matrix" not in metrics["test"]:
        return ""
    return ('<section id="confusion"><h2>Confusion matrix (test)</h2>'
            + _figure(plots.confusion(metrics["test"]["confusion_matrix"], labels),
                      "Rows are the true class, columns the prediction; colour is the share of "
                      "the true class, numbers are row counts.") + "</section>")


def _curves(d: Path, metrics: dict[str, Any] | None) -> str:
    c = _load(d / "eval" / "curves.json")
    if not c or not metrics or not c.get("roc"):
        return ""
    t = metrics["test"]
    return ('<section id="curves"><h2>ROC and precision-recall curves (test)</h2>'
            + _figure(plots.curves(c, t.get("roc_auc"), t.get("pr_auc"))) + "</section>")


def _calibration(metrics: dict[str, Any] | None) -> str:
    if not metrics or "reliability" not in metrics["test"]:
        return ""
    t = metrics["test"]
    return ('<section id="calibration"><h2>Calibration (test)</h2><div class="row">'
            + _figure(plots.reliability(t["reliability"], t["ece"]))
            + f'<p class="aside">Expected calibration error <b>{t["ece"]:.3f}</b>: on average, '
              "the model's stated confidence differs from how often it is right by this much "
              "(weighted over confidence bins). Bars under the diagonal mean over-confidence, "
              f"above it under-confidence. Log loss {t.get('log_loss', float('nan')):.3f}.</p>"
            + "</div></section>")


def _mistakes(d: Path, info: dict[str, Any] | None) -> str:
    pred_file = d / "eval" / "predictions.npz"
    if not pred_file.is_file() or not info:
        return ""
    with np.load(pred_file, allow_pickle=False) as z:
        probs, y, rows = z["probs"], z["y"], z["rows"]
        xs = z["x"] if "x" in z.files else None
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    head = '<section id="mistakes"><h2>Worst mistakes (test)</h2>'
    if len(wrong) == 0:
        return head + "<p>No test row is misclassified.</p></section>"
    conf = probs[wrong, pred[wrong]]
    order = wrong[np.argsort(-conf, kind="stable")][:MAX_MISTAKES]
    labels = info["labels"]
    intro = (f"<p>{len(wrong)} of {len(y)} test rows are misclassified; the "
             f"{len(order)} the model was most sure of are shown, most confident first.</p>")
    if xs is None:
        return head + intro + "</section>"
    x = xs[order]
    if x.dtype.kind == "U":  # text: the start of each article instead of a feature row
        trows = [[_num(int(rows[i])), e(labels[y[i]]), e(labels[pred[i]]), f"{probs[i, pred[i]]:.3f}",
                  e(_cut(str(x[j])))] for j, i in enumerate(order)]
        return head + intro + _table(("row", "true", "predicted", "p", "text"), trows) + "</section>"
    shape = info.get("image_shape")
    if shape:
        titles = [f"{labels[y[i]]} → {labels[pred[i]]} ({probs[i, pred[i]]:.2f})" for i in order]
        svg = plots.mistakes(x.reshape(len(order), *shape), titles)
        width = min(8, len(order)) * 115  # ~115 px per digit, however few there are
        return (head + intro + f'<div style="max-width:{width}px;margin:auto">'
                + _figure(svg, "true → predicted (probability of the prediction)") + "</div></section>")
    names = info.get("feature_names") or [f"f{i}" for i in range(x.shape[1])]
    k = min(6, len(names))
    trows = [[_num(int(rows[i])), e(labels[y[i]]), e(labels[pred[i]]), f"{probs[i, pred[i]]:.3f}",
              *(_num(float(v)) for v in x[j, :k])] for j, i in enumerate(order)]
    return (head + intro + _table(("row", "true", "predicted", "p", *names[:k]), trows, "num")
            + "</section>")


def _cut(text: str, chars: int = 160) -> str:
    """One line of at most `chars` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"


def _tuning(d: Path) -> str:
    trials = _jsonl(d / "tune" / "trials.jsonl")
    best = _load(d / "tune" / "best.json")
    if not trials and not best:
        return ""
    out = '<section id="tuning"><h2>Tuning</h2>'
    if isinstance(best, dict):
        out += "<h3>Best trial</h3>" + _kv(best)
    values = [t.get("value") for t in trials if isinstance(t.get("value"), (int, float))]
    if values:
        direction = str((best or {}).get("direction", "")).lower() if isinstance(best, dict) else ""
        metric = str((best or {}).get("metric", "objective")) if isinstance(best, dict) else "objective"
        maximize = direction != "minimize" and "loss" not in metric
        out += _figure(plots.tuning([float(v) for v in values], maximize, metric))
    if trials:
        out += f"<h3>Trials ({len(trials)})</h3>" + _records(trials)
    return out + "</section>"


def _pareto_points(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, list):
        return [p for p in doc if isinstance(p, dict)]
    if isinstance(doc, dict):
        for key in ("variants", "points", "models", "front"):
            if isinstance(doc.get(key), list):
                return [p for p in doc[key] if isinstance(p, dict)]
    return []


def _compression(d: Path) -> str:
    doc = _load(d / "compress" / "pareto.json")
    if doc is None:
        return ""
    out = '<section id="compression"><h2>Compression</h2>'
    points = [dict(_flatten(p)) for p in _pareto_points(doc)]
    if points:
        numeric = [k for k in points[0] if all(isinstance(p.get(k), (int, float))
                                               and not isinstance(p.get(k), bool) for p in points)]
        x_key = next((k for k in numeric if any(w in k for w in ("bytes", "size", "latency"))), None)
        y_key = next((k for k in numeric if any(w in k for w in ("accuracy", "f1", "score"))), None)
        if x_key and y_key:
            out += _figure(plots.pareto(points, x_key, y_key))
        out += _records(points)
    elif isinstance(doc, dict):
        out += _kv(doc)
    return out + "</section>"


def _package(d: Path, pkg: dict[str, Any] | None) -> str:
    if not pkg:
        return ""
    p = pkg.get("parity", {})
    size = (d / "package" / pkg.get("artifacts", {}).get("onnx", "model.onnx"))
    rows = [("inputs", json.dumps(pkg.get("inputs"))), ("outputs", json.dumps(pkg.get("outputs"))),
            ("runtime", pkg.get("runtime")),
            ("model.onnx", f"{size.stat().st_size / 1e6:.2f} MB" if size.is_file() else "missing"),
            ("parity", f"max |Δp| {p.get('max_abs_diff', float('nan')):.2e} (tolerance "
                       f"{p.get('atol')}), labels agree {p.get('label_agreement', 0):.2%} on "
                       f"{p.get('rows')} rows")]
    return (f'<section id="package"><h2>Package</h2>{_table(("", ""), ((e(k), e(v)) for k, v in rows), "kv")}'
            f"<pre>danlu serve {e(d / 'package')}</pre></section>")


TITLES = {"summary": "Summary", "recipe": "Recipe", "data": "Data", "training": "Training",
          "metrics": "Metrics", "confusion": "Confusion", "curves": "ROC / PR",
          "calibration": "Calibration", "mistakes": "Mistakes", "tuning": "Tuning",
          "compression": "Compression", "package": "Package"}


def render(run_dir: str | Path) -> str:
    """The whole page as one HTML string."""
    d = Path(run_dir)
    manifest = _load(d / "manifest.json")
    if manifest is None:
        raise DanluError(f"{d}: not a danlu run folder (no manifest.json); pass a folder made by "
                         "`danlu run`")
    info = _load(d / "data" / "info.json")
    metrics = _load(d / "eval" / "metrics.json")
    pkg = _load(d / "package" / "danlu-model.json")
    labels = info["labels"] if info else []
    parts = {
        "summary": _summary(metrics, pkg), "recipe": _recipe(d), "data": _data(d, info),
        "training": _training(d), "metrics": _metrics(d, metrics, labels),
        "confusion": _confusion(metrics, labels), "curves": _curves(d, metrics),
        "calibration": _calibration(metrics), "mistakes": _mistakes(d, info),
        "tuning": _tuning(d), "compression": _compression(d), "package": _package(d, pkg),
    }
    nav = "".join(f'<a href="#{k}">{TITLES[k]}</a>' for k, v in parts.items() if v)
    body = "".join(v for v in parts.values() if v)
    name = manifest.get("name", d.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(name)} — danlu report</title>
<style>{CSS}</style></head>
<body>{_header(d, manifest)}<nav>{nav}</nav><main>{body}</main>
<footer>Made by <code>danlu report</code> from {e(d.name)}. One file: plots are inline SVG,
no scripts, no network; it reads the same offline.</footer></body></html>
"""


CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2563eb;
--ok:#059669;--bad:#dc2626;--warn:#b45309}
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",
sans-serif;color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#0f172a,#1e3a8a);color:#fff;padding:28px 40px 22px}
header h1{margin:4px 0 6px;font-size:30px;letter-spacing:-.01em}
.brand{font-size:13px;opacity:.75;letter-spacing:.06em;text-transform:uppercase}
.meta{font-size:13px;opacity:.8}
.badges{margin-top:12px}
.badge{display:inline-block;font-size:12px;padding:2px 9px;border-radius:999px;margin:0 6px 4px 0;
background:rgba(255,255,255,.14)}
.badge.finished{background:rgba(16,185,129,.28)}.badge.failed{background:rgba(239,68,68,.45)}
.badge.running{background:rgba(245,158,11,.4)}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
padding:8px 40px;display:flex;flex-wrap:wrap;gap:4px 18px}
nav a{color:var(--muted);text-decoration:none;font-size:14px}nav a:hover{color:var(--accent)}
main{max-width:1180px;margin:0 auto;padding:12px 24px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 24px;
margin:18px 0;box-shadow:0 1px 2px rgba(15,23,42,.04)}
h2{margin:0 0 12px;font-size:20px}h3{margin:18px 0 8px;font-size:15px;color:var(--muted)}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 160px;border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fbfcfe}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card .v{font-size:28px;font-weight:650;font-variant-numeric:tabular-nums}
.card .ci{font-size:12px;color:var(--muted);font-variant-numeric:tabular-nums}
.card.pass .v{color:var(--ok)}.card.fail .v{color:var(--bad)}
.warning{border-left:4px solid var(--warn);background:#fffbeb;padding:10px 14px;margin:0 0 14px;
border-radius:6px;color:#78350f}
.failure{border-left:4px solid var(--bad);background:#fef2f2;padding:10px 14px;margin:0 0 14px;
border-radius:6px;color:#7f1d1d}
.note{color:var(--muted);font-size:13px;margin:12px 0 0}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table.num td{font-variant-numeric:tabular-nums}
table.kv td:first-child{color:var(--muted);white-space:nowrap;width:1%}
table.metrics td:nth-child(2){font-weight:600}
.bar{display:inline-block;width:90px;height:8px;background:var(--line);border-radius:4px;
vertical-align:middle;margin-right:6px;overflow:hidden}
.bar span{display:block;height:100%;background:var(--accent)}
figure{margin:8px 0;text-align:center}
figure svg.plot{max-width:100%;height:auto}
figcaption{font-size:13px;color:var(--muted);margin-top:4px}
#training svg.plot,#curves svg.plot{width:100%}
#confusion svg.plot{width:min(640px,100%)}
#calibration svg.plot{width:min(460px,100%)}
#mistakes svg.plot{width:min(900px,100%)}
.row{display:flex;flex-wrap:wrap;align-items:center;gap:24px}.row figure{flex:0 1 460px}
.aside{flex:1 1 280px;color:var(--ink)}
pre{background:#0f172a;color:#e2e8f0;padding:12px 14px;border-radius:8px;overflow:auto;font-size:13px}
details summary{cursor:pointer;color:var(--accent);margin-top:10px}
footer{text-align:center;color:var(--muted);font-size:13px;padding:10px 20px 30px}
"""
