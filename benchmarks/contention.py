"""Contention: danlu runs alone vs beside a CPU-bound neighbour, with and without danlu's thread
policy (danlu/threads.py; `DANLU_THREADS=off` = the libraries' defaults, the old behaviour).

Each job is the CLI a user runs (`danlu run ...` in its own process, imports included), timed
wall-clock: the digits recipe (fewer epochs, no gate) and a tiny text run (MiniLM cut to 2
layers, 32 tokens, 200 BBC articles: tests/textdata.py). The neighbour is another user's job,
untouched by danlu's policy: a Python process doing numpy float64 matmuls with its BLAS's
default threads (`--neighbour torch`: torch matmuls with its OpenMP defaults). Every
(job, policy, alone/beside) cell runs once per repetition, interleaved, so load drifts hit all
cells alike. Goal (issue 16): beside / alone <= 2.5x on 2 cores, and the policy no slower alone.

`--micro` adds eager torch small-op loops under each OpenMP wait setting (libgomp's default,
PASSIVE, a short GOMP_SPINCOUNT), alone and beside: what the policy costs alone, if anything.
`--serve` adds `danlu serve --workers 1` vs `--workers 2` (wide CNN, wrk at c=32; helpers
from benchmarks/serving.py), the "old" 2-worker server being DANLU_THREADS=off with each
worker at cores / inference_workers threads, as before the split.

    python benchmarks/contention.py                  # 3 repetitions; results/contention.json + RESULTS.md
    python benchmarks/contention.py --serve --micro  # and the serving workers' and micro rows
    python benchmarks/contention.py --quick   # a check that it runs end to end: 1 repetition,
        # 1 epoch, train stage only, 1 s of wrk; a temp folder (never benchmarks/RESULTS.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Bench, add_args

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tests.textdata: the tiny text data, shipped inside a wheel

from danlu.runs import atomic_write  # noqa: E402

BEGIN, END = "<!-- contention.py: begin -->", "<!-- contention.py: end -->"
# The variables of the thread policy: stripped from every job's environment, so "on" is the
# policy's own choice and "off" the libraries' defaults, whatever this shell had set.
POLICY_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM", "DANLU_THREADS", "DANLU_THREADS_SET",
               "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

NEIGHBOURS = {
    "numpy": "import numpy as np\na = np.random.rand(512, 512)\n"
             "while True:\n    a = (a @ a.T) / 512.0\n",
    "torch": "import torch\na = torch.rand(512, 512)\n"
             "while True:\n    a = (a @ a.T) / 512.0\n",
}


def base_env(policy: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT),
                                         *filter(None, [os.environ.get("PYTHONPATH")])])
    if not policy:
        env["DANLU_THREADS"] = "off"
    return env


def jobs(work: Path, quick: bool) -> dict[str, list[str]]:
    """{name: danlu command line}: the digits recipe and the tiny text run."""
    import yaml
    from tests.textdata import bbc_texts, tiny_text_recipe, write_jsonl

    src = write_jsonl(work / "bbc.jsonl", *bbc_texts(0, 40))
    recipe = tiny_text_recipe(src)
    text = work / "tiny-text.yaml"
    text.write_text(yaml.safe_dump(recipe))
    until = ["--until", "train"] if quick else []
    danlu = [sys.executable, "-m", "danlu.cli", "run"]
    return {"digits": [*danlu, str(ROOT / "recipes" / "digits.yaml"),
                       f"train.epochs={1 if quick else 10}", "evaluate.gate={}", *until],
            "text": [*danlu, str(text), f"train.epochs={1 if quick else 3}", *until]}


def timed(cmd: list[str], env: dict[str, str], out: Path) -> float:
    """Wall seconds of one job, start to exit (a failure stops the benchmark with its output)."""
    started = time.perf_counter()
    proc = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def accuracy(runs: Path) -> float | None:
    """The test accuracy of the newest run under `runs` (None when it stopped before evaluate)."""
    newest = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    metrics = newest / "eval" / "metrics.json"
    return json.loads(metrics.read_text())["test"].get("accuracy") if metrics.is_file() else None


class Neighbour:
    """A CPU-bound process with its libraries' default threads, running while inside `with`."""

    def __init__(self, kind: str):
        self.kind, self.proc = kind, None

    def __enter__(self) -> Neighbour:
        env = base_env(policy=False)
        env.pop("DANLU_THREADS", None)  # not a danlu process: nothing of danlu's applies
        self.proc = subprocess.Popen([sys.executable, "-c", NEIGHBOURS[self.kind]], env=env)
        time.sleep(1.0)  # imported and computing before the job starts
        return self

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()


def contention(args: argparse.Namespace, work: Path) -> dict:
    """Every job x policy x alone/beside, `args.reps` interleaved repetitions."""
    cmds = jobs(work, args.quick)
    times: dict = {}
    acc: dict = {}
    for rep in range(args.reps):
        for name, cmd in cmds.items():
            # alternate the order of the policies so neither always runs first
            for policy in ((True, False) if rep % 2 == 0 else (False, True)):
                for beside in (False, True):
                    key = f"{'on' if policy else 'off'}/{'beside' if beside else 'alone'}"
                    out = work / "runs" / name / key.replace("/", "-")
                    out.mkdir(parents=True, exist_ok=True)
                    if beside:
                        with Neighbour(args.neighbour):
                            s = timed(cmd, base_env(policy), out)
                    else:
                        s = timed(cmd, base_env(policy), out)
                    times.setdefault(name, {}).setdefault(key, []).append(round(s, 2))
                    acc.setdefault(name, {}).setdefault(key, []).append(accuracy(out))
                    print(f"contention: {name} {key} rep {rep}: {s:.1f} s", flush=True)
    summary = {}
    for name, cells in times.items():
        med = {k: statistics.median(v) for k, v in cells.items()}
        summary[name] = {
            "median_s": med,
            "slowdown_beside_policy": med["on/beside"] / med["on/alone"],
            "slowdown_beside_off": med["off/beside"] / med["off/alone"],
            "policy_speedup_beside": med["off/beside"] / med["on/beside"],
            "policy_speedup_alone": med["off/alone"] / med["on/alone"],
        }
    return {"times_s": times, "test_accuracy": acc, "summary": summary}


# Eager torch on small tensors (a transformer block's shapes at batch 64): many short parallel
# regions, where OpenMP's waiting policy matters most. Prints the loop's seconds.
MICRO = r"""
import time, torch
x, w1, w2 = torch.randn(64, 384), torch.randn(384, 1536), torch.randn(1536, 384)
for _ in range(20):
    torch.relu(x @ w1) @ w2
t = time.perf_counter()
for _ in range(%d):
    torch.softmax(torch.relu(x @ w1) @ w2, -1)
print(time.perf_counter() - t)
"""
# OpenMP waiting, as the variables libgomp reads: its default (spin ~300,000 times, then sleep),
# passive (sleep at once) and a short spin (GOMP_SPINCOUNT: danlu's policy) between the two.
WAITS = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
         "spin10k": {"GOMP_SPINCOUNT": "10000"}}


def micro(args: argparse.Namespace) -> dict:
    """The microbenchmark: MICRO's loop time per OpenMP wait setting, alone and beside."""
    code = MICRO % (100 if args.quick else 1000)
    secs: dict = {}
    for rep in range(args.reps):
        for beside in (False, True):
            for wait, extra in WAITS.items():
                env = {**base_env(policy=False), **extra}
                env.pop("DANLU_THREADS", None)
                if beside:
                    with Neighbour(args.neighbour):
                        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                             capture_output=True, text=True).stdout
                else:
                    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                         capture_output=True, text=True).stdout
                key = f"{wait}/{'beside' if beside else 'alone'}"
                secs.setdefault(key, []).append(round(float(out), 3))
                print(f"contention: micro {key} rep {rep}: {float(out):.2f} s", flush=True)
    return {"seconds": secs, "median_s": {k: statistics.median(v) for k, v in secs.items()}}


def serve_workers(args: argparse.Namespace, work: Path) -> dict:
    """req/s of `danlu serve` with 1 and 2 workers (and 2 workers the old way), interleaved."""
    sys.path.insert(0, str(HERE))
    import serving  # the load generator and server helpers of benchmarks/serving.py

    from danlu.threads import cores

    pkg = serving.wide_cnn(work)["package"]
    good, bad = serving.bodies(work, pkg)
    old_threads = str(max(1, cores() // 2))  # before: cores / inference_workers (default 2)
    configs = {"workers1": (["--workers", "1"], True),
               "workers2": (["--workers", "2"], True),
               "workers2_old": (["--workers", "2", "--threads", old_threads], False)}
    rps: dict = {}
    for rep in range(args.reps):
        for name, (extra, policy) in configs.items():
            port = serving.free_port()
            url = f"http://127.0.0.1:{port}"
            env = base_env(policy)
            cmd = [sys.executable, "-m", "danlu.serve", str(pkg), "--port", str(port), *extra]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                _ready(url, proc)
                serving.wrk(f"{url}/v2/models/wide/infer", good, bad, 32, 1)  # warm-up
                res = serving.wrk(f"{url}/v2/models/wide/infer", good, bad, 32, args.seconds)
            finally:
                serving.stop(proc)
            rps.setdefault(name, []).append(round(res["rps"], 1))
            print(f"contention: serve {name} rep {rep}: {res['rps']:.0f} req/s", flush=True)
    med = {k: statistics.median(v) for k, v in rps.items()}
    return {"rps": rps, "median_rps": med, "workers2_vs_1": med["workers2"] / med["workers1"],
            "workers2_vs_old": med["workers2"] / med["workers2_old"], "concurrency": 32,
            "seconds": args.seconds}


def _ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"danlu serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"danlu serve not ready in {timeout:.0f} s")


def torch_version() -> str:
    import torch

    return torch.__version__


def write_table(res: dict, bench: Bench) -> None:
    """RESULTS.md's contention rows, between this script's markers (replaced on a re-run)."""
    rows = [f"### contention.py {bench.note()}; torch {res['torch']}; neighbour: "
            f"{res['neighbour']} matmuls at default threads; median of {res['reps']})", "",
            "| job | alone (s) | beside (s) | beside / alone | policy off: alone / beside (s) "
            "| off: beside / alone | policy's speed-up beside |", "|---|---|---|---|---|---|---|"]
    for name, s in res["contention"]["summary"].items():
        m = s["median_s"]
        rows.append(f"| {name} | {m['on/alone']:.1f} | {m['on/beside']:.1f} | "
                    f"{s['slowdown_beside_policy']:.2f}x | {m['off/alone']:.1f} / "
                    f"{m['off/beside']:.1f} | {s['slowdown_beside_off']:.2f}x | "
                    f"{s['policy_speedup_beside']:.2f}x |")
    if "micro" in res:
        m = res["micro"]["median_s"]
        rows += ["", "eager torch small-op loop (s), alone / beside: " + ", ".join(
            f"{w} {m[w + '/alone']:.2f} / {m[w + '/beside']:.2f}" for w in WAITS)]
    if "serve" in res:
        v = res["serve"]
        m = v["median_rps"]
        rows += ["", f"serve wide CNN c=32, req/s: --workers 1 {m['workers1']:.0f}, --workers 2 "
                 f"{m['workers2']:.0f} ({v['workers2_vs_1']:.2f}x), 2 workers without the "
                 f"policy {m['workers2_old']:.0f} (policy {v['workers2_vs_old']:.2f}x)"]
    block = "\n".join([BEGIN, *rows, END])
    table = bench.results_md
    text = table.read_text() if table.is_file() else "# Benchmark results\n"
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    atomic_write(table, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions per cell")
    ap.add_argument("--neighbour", choices=sorted(NEIGHBOURS), default="numpy")
    ap.add_argument("--serve", action="store_true", help="also danlu serve --workers 1 vs 2")
    ap.add_argument("--micro", action="store_true",
                    help="also eager torch small-op loops per OpenMP wait setting")
    ap.add_argument("--seconds", type=float, default=8.0, help="wrk duration per serve point")
    ap.add_argument("--quick", action="store_true",
                    help="a check that it runs: 1 repetition, 1 epoch, train stage only, 1 s of "
                         "wrk; never writes RESULTS.md")
    add_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.reps, args.seconds = 1, 1.0
    bench = Bench.start("contention", args)
    work = Path(tempfile.mkdtemp(prefix="danlu-bench-contention-"))
    try:
        res = {"torch": torch_version(), "reps": args.reps, "neighbour": args.neighbour,
               "contention": contention(args, work)}
        if args.serve:
            res["serve"] = serve_workers(args, work)
        if args.micro:
            res["micro"] = micro(args)
        bench.finish()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.save("contention.json", res)
    print(json.dumps(res["contention"]["summary"], indent=2))
    write_table(res, bench)


if __name__ == "__main__":
    main()
