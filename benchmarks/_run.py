"""Run the benchmarks one after another: all of them (`make bench`), a named subset
(`make bench ONLY="serving tables"`), or each one's --quick check (`make bench QUICK=1`).

    python benchmarks/_run.py [NAME ...] [--quick] [--list] [--out DIR]

NAME is a script (`serving`: every run of benchmarks/serving.py) or one run (`serving-text`).
Every script in benchmarks/ is a benchmark except baseline_*.py (the baselines' servers) and
_*.py (this runner, the shared helpers); a script not listed in RUNS below runs once, without
arguments. Each run is its own process and waits for a quiet machine itself (benchmarks/_common.py).
A failing run does not stop the others; the exit status is 1 if any failed. --quick passes
--quick and a temp --out to each (RESULTS.md untouched): a check that everything runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, extra arguments, full-size runtime on a quiet 2-core machine, what it measures).
# Runtimes: measured (load 5-15 unless noted) and scaled for a quiet machine; the lead's quiet
# re-run replaces them.
RUNS: dict[str, tuple[str, list[str], str, str]] = {
    "train_loop": ("train_loop", [], "~0.5 min",
                   "fit() vs a hand-written PyTorch loop, samples/s (digits CNN, batch 64)"),
    "data_prepare": ("data_prepare", [], "~3 min, ~3 GB RAM (pandas side)",
                     "`danlu data prepare` vs pandas on a 5M-row dirty CSV: rows/s, peak RSS"),
    "text_train": ("text_train", [], "~2 min (5 min at load 7)",
                   "s per AdamW update of MiniLM-L6, b32 x 128 tokens: fp32, bf16, frozen "
                   "embeddings, LoRA; padding with length bucketing"),
    "tuning": ("tuning", [], "~8 min (12 min at load ~5)",
               "trials each sampler needs to reach a full grid's best; epochs the median "
               "pruner saves (digits, 728 small trials)"),
    "tables": ("tables", [], "~20 min (measured, quiet)",
               "unedited `danlu init` recipe vs HistGradientBoosting on 10 public tables: "
               "metric with CI, fit time, size, latency"),
    "tables-tune12": ("tables", ["--tune", "12"], "~62 min (measured, quiet)",
                      "the same with `danlu init --tune 12`"),
    "serving": ("serving", [], "~11 min (5-min soak)",
                "danlu serve (batching on/off) vs FastAPI+PyTorch under wrk: req/s and p50/95/99 "
                "at c=1..64, digits and a wide CNN; soak with 1% malformed requests"),
    "serving-text": ("serving", ["--text"], "~5 min",
                     "raw-text req/s of a MiniLM-L6 package: ORT fp32 vs ORT int8 vs torch bf16"),
    "compression": ("compression", [], "~4.5 min (measured, quiet; 52 min at load 5-15)",
                    "int8 (static, dynamic, QAT), pruning, distillation on 3 models: accuracy, "
                    "size, b1/b32 latency, distillation gain with CI"),
    "transformer": ("transformer", [], "~11 min (measured, quiet; 40 min at load 8-14)",
                    "the text recipe end to end, then eager fp32 / ORT fp32 / ORT int8 / bf16 / "
                    "package default / student: accuracy and latency"),
    "contention": ("contention", ["--serve", "--micro"], "~17 min (measured, quiet)",
                   "digits and a tiny text run alone vs beside a CPU-bound neighbour, thread "
                   "policy on/off; serve --workers 1 vs 2; OpenMP wait settings"),
    "install": ("install", [], "~2.5 min (measured, quiet)",
                "`[serve]` vs `[all]` venv: site-packages size, `danlu serve` start-up"),
    "text_loop": ("text_loop", [], "~8 min (measured, quiet)",
                  "MiniLM-L6 fine-tuning samples/s: danlu fit() vs a hand-written transformers "
                  "loop vs HF Trainer, same batches"),
    "distill": ("distill", [], "~9.5 min (measured, quiet)",
                "Fashion-MNIST wide CNN teacher -> 0.063x student: distillation gain with CI"),
    "int8_ceiling": ("int8_ceiling", ["--runs", "100"], "~1 min (measured, quiet)",
                     "ORT int8 kernels alone vs fp32 (QLinearConv, MatMulInteger) at the CNN's "
                     "conv shapes and a 1024^3 GEMM"),
}


def runs() -> dict[str, tuple[str, list[str], str, str]]:
    """RUNS plus any other script in benchmarks/ (run once, no arguments)."""
    scripts = sorted(p.stem for p in HERE.glob("*.py")
                     if not p.name.startswith(("_", "baseline_")))
    known = {script for script, *_ in RUNS.values()}
    return {**{k: v for k, v in RUNS.items() if (HERE / f"{v[0]}.py").is_file()},
            **{s: (s, [], "?", "(see its docstring)") for s in scripts if s not in known}}


def main() -> int:
    table = runs()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"scripts or runs (default all): {', '.join(table)}")
    ap.add_argument("--quick", action="store_true", help="each script's --quick check, temp output")
    ap.add_argument("--list", action="store_true", help="list the runs, their runtime and what they "
                                                        "measure, and stop")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder for every run (default: each script's own; --quick: temp)")
    args = ap.parse_args()
    if args.list:
        for name, (script, extra, runtime, what) in table.items():
            print(f"{name:14s} {' '.join([f'{script}.py', *extra]):24s} {runtime:34s} {what}")
        return 0
    if unknown := [n for n in args.names if n not in table
                   and n not in {script for script, *_ in table.values()}]:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    chosen = [n for n, (script, *_) in table.items()
              if not args.names or n in args.names or script in args.names]
    out = args.out or (Path(tempfile.mkdtemp(prefix="danlu-bench-quick-")) if args.quick else None)
    done: list[tuple[str, float, str]] = []
    for name in chosen:
        script, extra, *_ = table[name]
        path = HERE / f"{script}.py"
        if args.quick and "--quick" not in path.read_text():
            done.append((name, 0.0, "skipped: no --quick"))
            continue
        cmd = [sys.executable, str(path), *extra]
        if args.quick:
            cmd.append("--quick")
        if out is not None:
            cmd += ["--out", str(out / name if args.quick else out)]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, check=False).returncode
        done.append((name, time.perf_counter() - t0, "ok" if rc == 0 else f"FAILED (exit {rc})"))
    print("\n== benchmarks" + (f" (--quick; output in {out})" if args.quick else ""))
    for name, secs, status in done:
        print(f"{name:14s} {secs:7.0f} s  {status}")
    return 1 if any(s.startswith("FAILED") for _, _, s in done) else 0


if __name__ == "__main__":
    sys.exit(main())
