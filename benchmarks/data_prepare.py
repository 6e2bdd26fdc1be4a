"""Benchmark: `danlu data prepare` (streaming) vs the obvious pandas script, on one dirty CSV.

Generates a CSV of N rows x 20 float columns + a label (5% of rows with an empty cell, 5% exact
copies of other rows), then runs each side in its own subprocess and reports rows/s (input rows
over wall time, interpreter start included) and peak RSS (the child's own ru_maxrss). Both
sides must keep the same rows. Writes benchmarks/results/data_prepare.json and a table into
benchmarks/RESULTS.md.

    python benchmarks/data_prepare.py                 # 5,000,000 rows (~0.8 GB of CSV, pandas
        # peaks at ~3 GB of RAM); ~3 min quiet (generating the CSV ~1 min, danlu ~25 s, pandas ~50 s)
    python benchmarks/data_prepare.py --rows 200000   # a smaller run (its own rows in RESULTS.md)
    python benchmarks/data_prepare.py --quick         # a check that it runs: 20,000 rows, a temp
        # folder, RESULTS.md untouched
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Bench, add_args

ROOT = Path(__file__).resolve().parents[1]
COLS = 20
QUICK_ROWS = 20_000

PANDAS_SIDE = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
src, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
df = pd.read_csv(src)
df = df.dropna()
df = df.drop_duplicates()
feats = [c for c in df.columns if c != "label"]
df[feats] = (df[feats] - df[feats].mean()) / df[feats].std(ddof=0)
df.to_parquet(out + "/pandas.parquet")
np.save(out + "/pandas_rows.npy", df.index.to_numpy() + 1)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

DANLU_SIDE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from danlu.cli import app
recipe, out = sys.argv[1], sys.argv[2]
try:
    app(["data", "prepare", recipe, "--out", out], standalone_mode=False)
except SystemExit as e:
    if e.code:
        raise
import glob, numpy as np, pyarrow.parquet as pq
run = sorted(glob.glob(out + "/bench-*"))[-1]
rows = pq.read_table(run + "/data/clean.parquet", columns=["__row__"]).column(0).to_numpy()
np.save(out + "/danlu_rows.npy", np.sort(rows))
print(json.dumps({"seconds": time.perf_counter() - t0, "run": run,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(path: Path, rows: int, seed: int = 0, chunk: int = 250_000) -> dict:
    """Write the dirty CSV in chunks (memory stays one chunk); return what was planted."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    names = [f"f{j}" for j in range(COLS)]
    invalid = dup = 0
    with pacsv.CSVWriter(path, pa.schema([*(pa.field(n, pa.float64()) for n in names),
                                          pa.field("label", pa.int64())])) as w:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = np.round(rng.normal(size=(n, COLS)) * 10, 4)
            y = rng.integers(0, 10, n)
            kind = rng.random(n)
            bad = kind < 0.05                       # 5%: one empty cell
            copy = (kind >= 0.05) & (kind < 0.10)   # 5%: an exact copy of an earlier valid row
            copy[0] = False
            src = np.flatnonzero(~bad & ~copy)
            for i in np.flatnonzero(copy):
                j = src[np.searchsorted(src, i) - 1] if np.searchsorted(src, i) else src[0]
                if j >= i:
                    copy[i] = False
                    continue
                x[i], y[i] = x[j], y[j]
            hole = rng.integers(0, COLS, n)
            cols = [pa.array(x[:, j], mask=bad & (hole == j)) for j in range(COLS)]
            w.write_table(pa.table([*cols, pa.array(y)], names=[*names, "label"]))
            invalid += int(bad.sum())
            dup += int(copy.sum())
    return {"rows": rows, "invalid_planted": invalid, "duplicates_planted": dup,
            "bytes": path.stat().st_size}


def side(code: str, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       check=False, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin",
                                         "OMP_NUM_THREADS": "2"})
    if r.returncode:
        raise SystemExit(f"side failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--workdir", type=Path, default=None, help="where the CSV goes (default: a temp dir)")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_ROWS:,} rows: a check that it runs (RESULTS.md untouched)")
    add_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.rows = QUICK_ROWS
    tmp = Path(args.workdir or tempfile.mkdtemp(prefix="danlu-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv = tmp / f"dirty-{args.rows}.csv"
    t = time.perf_counter()
    sidecar = csv.with_suffix(".json")
    if not (csv.exists() and sidecar.exists()):
        sidecar.write_text(json.dumps(generate(csv, args.rows)))
    planted = json.loads(sidecar.read_text())
    print(f"csv: {csv} ({planted['bytes'] / 1e6:.0f} MB, generated in {time.perf_counter() - t:.0f} s)")
    recipe = tmp / "bench.yaml"
    recipe.write_text(f"name: bench\ndata: {{source: 'csv:{csv}', target: label}}\n"
                      # missing: drop, as pandas' dropna (danlu's default imputes them)
                      "model: {arch: mlp}\npreprocess: {normalize: zscore, clean: {missing: drop}}\n")
    bench = Bench.start("data_prepare", args)  # after generating the CSV: that is not measured
    ours = side(DANLU_SIDE, str(recipe), str(tmp))
    print("danlu ", ours)
    base = side(PANDAS_SIDE, str(csv), str(tmp))
    print("pandas", base)
    bench.finish()
    a, b = np.load(tmp / "danlu_rows.npy"), np.sort(np.load(tmp / "pandas_rows.npy"))
    same = bool(len(a) == len(b) and np.array_equal(a, b))
    cleaning = json.loads(Path(ours["run"], "data", "cleaning.json").read_text())
    res = {
        "rows": args.rows, "columns": COLS, "csv_mb": round(planted["bytes"] / 1e6),
        "planted": planted, "removed_by_danlu": cleaning["removed"],
        "kept_rows": {"danlu": int(len(a)), "pandas": int(len(b))}, "same_rows": same,
        "danlu": {"seconds": ours["seconds"], "rows_per_s": args.rows / ours["seconds"],
                  "peak_rss_mb": ours["peak_rss_mb"]},
        "pandas": {"seconds": base["seconds"], "rows_per_s": args.rows / base["seconds"],
                   "peak_rss_mb": base["peak_rss_mb"]},
    }
    res["throughput_ratio"] = res["danlu"]["rows_per_s"] / res["pandas"]["rows_per_s"]
    res["rss_ratio"] = res["danlu"]["peak_rss_mb"] / res["pandas"]["peak_rss_mb"]
    bench.save("data_prepare.json", res)
    _table(bench, res)
    print(json.dumps(res, indent=2))
    if not same:
        raise SystemExit("the two sides kept different rows")


def _table(bench: Bench, res: dict) -> None:
    n = f"{res['rows'] / 1e6:g}M x {res['columns']}"
    tail = bench.cell()
    rows = [
        f"| data_prepare {n}: rows/s (danlu data prepare vs pandas read_csv+dropna+drop_duplicates"
        f"+zscore+to_parquet; same rows kept: {res['same_rows']}) | {res['danlu']['rows_per_s']:,.0f} | "
        f"{res['pandas']['rows_per_s']:,.0f} | {res['throughput_ratio']:.2f}x | {tail}",
        f"| data_prepare {n}: peak RSS MB | {res['danlu']['peak_rss_mb']:,.0f} | "
        f"{res['pandas']['peak_rss_mb']:,.0f} | {res['rss_ratio']:.2f}x | {tail}",
    ]
    bench.rows(f"| data_prepare {n}:", rows)


if __name__ == "__main__":
    main()
