"""The tuning section, from what `danlu tune` writes: tune/best.json, trials.jsonl, plots.json + SVGs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import danlu.report.plots as plots
from danlu.report.common import e, figure, jsonl, load, num, table

__all__ = ["tuning"]

MAX_TRIALS = 40


def _overrides(o: Any) -> str:
    if not isinstance(o, dict):
        return ""
    def show(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return json.dumps(v) if isinstance(v, (list, dict)) else str(v)

    return "<br>".join(f"{e(k)} = {e(show(v))}" for k, v in o.items())


def _values(v: Any) -> str:
    return ", ".join(num(x, 4) for x in v) if isinstance(v, list) else ""


def _best(best: dict[str, Any]) -> str:
    objectives = best.get("objectives") or []
    vals = best.get("values") or []
    goal = ", ".join(f"{e(o.get('metric'))} ({e(o.get('direction'))}) = {num(v, 4)}"
                     for o, v in zip(objectives, vals, strict=False))
    t = best.get("trials", {})
    counts = ", ".join(f"{e(k)} {num(v)}" for k, v in t.items() if k != "finished")
    rows = [("chosen trial", f"#{best.get('trial')}: {goal}"),
            ("overrides", _overrides(best.get("overrides"))),
            ("best epoch", num(best.get("best_epoch"))),
            ("trials", f"{num(t.get('finished', 0))} finished ({counts})"),
            ("epochs trained", f"{num(best.get('epochs_total', 0))} in all, "
                               f"{num(best.get('epochs_pruned_trials', 0))} in pruned trials"),
            ("sampler / pruner", f"{e(best.get('sampler'))} / {e(best.get('pruner'))}"),
            ("study", f"{e(best.get('study'))} in {e(best.get('storage'))}")]
    if best.get("seconds") is not None:
        rows.append(("time", f"{best['seconds']:.1f} s"))
    if best.get("pareto_front"):
        rows.append(("Pareto front", "<br>".join(
            f"#{p['trial']}: {_values(p.get('values'))}" for p in best["pareto_front"])))
    return table(("", ""), ((e(k), v) for k, v in rows), "kv")


def _optuna_svgs(d: Path) -> str:
    """Optuna's own plots (tune/*.svg listed in plots.json), as data-URI images: self-contained,
    and their element ids cannot clash with the page's inline SVGs."""
    listed = load(d / "tune" / "plots.json") or {}
    imgs = []
    for name, rel in (listed.get("written") or {}).items():
        path = d / rel
        if path.is_file() and path.suffix == ".svg":
            data = base64.b64encode(path.read_bytes()).decode()
            imgs.append(f'<figure class="optuna"><img alt="{e(name)}" src="data:image/svg+xml;base64,'
                        f'{data}"><figcaption>{e(name.replace("_", " "))}</figcaption></figure>')
    return f'<h3>Optuna plots</h3><div class="grid">{"".join(imgs)}</div>' if imgs else ""


def tuning(d: Path) -> str:
    trials = jsonl(d / "tune" / "trials.jsonl")
    best = load(d / "tune" / "best.json")
    if not trials and not isinstance(best, dict):
        return ""
    out = '<section id="tuning"><h2>Tuning</h2>'
    first = {"metric": "objective", "direction": "maximize"}
    if isinstance(best, dict):
        out += "<h3>Best trial</h3>" + _best(best)
        first = (best.get("objectives") or [first])[0]
    optuna_plots = _optuna_svgs(d)
    done = [t for t in trials if t.get("state") == "complete" and t.get("values")]
    if done and not optuna_plots:  # Optuna's own history plot says the same, when it exists
        out += figure(plots.tuning([float(t["values"][0]) for t in done],
                                   first.get("direction") != "minimize", str(first.get("metric")),
                                   [int(t.get("number", i)) for i, t in enumerate(done)]),
                      f"completed trials ({len(done)} of {len(trials)}); pruned and failed trials "
                      "are left out")
    out += optuna_plots
    if trials:
        rows = [[num(t.get("number")), e(t.get("state")), _values(t.get("values")),
                 _overrides(t.get("overrides")), num(t.get("epochs")), num(t.get("best_epoch")),
                 num(t.get("seconds"), 1) if t.get("seconds") is not None else "",
                 e(t.get("error") or "")] for t in trials[:MAX_TRIALS]]
        more = f" (first {MAX_TRIALS})" if len(trials) > MAX_TRIALS else ""
        out += (f"<h3>Trials ({len(trials)}){more}</h3>"
                + table(("#", "state", "value(s)", "overrides", "epochs", "best epoch", "s", "error"),
                        rows, "num"))
    return out + "</section>"
