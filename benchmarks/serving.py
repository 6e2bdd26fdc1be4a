"""Serving under load: danlu serve (batching on / off) vs FastAPI + pydantic + PyTorch eager.

One run, loopback only. The load generator is Debian's `wrk` (C, its own process) with a Lua
script that POSTs a KServe v2 JSON body; it reports requests/s and p50/p95/p99 latency. Two
models: the digits CNN (the shipped recipe, 8x8 inputs: HTTP and JSON dominate) and a wide
CNN on 1x64x64 (compute dominates). Then a soak: danlu serve at concurrency 32 with 1% malformed
requests, watching for 5xx, crashes and RSS growth.

    python benchmarks/serving.py                    # full: ~8 s per point, 5-minute soak; ~11 min
    python benchmarks/serving.py --seconds 4 --soak-seconds 30
    python benchmarks/serving.py --text             # only the text rows (MiniLM-L6, 3 runtimes);
        # ~5 min (1 epoch of fine-tuning, the export, 3 x 12 s of wrk)
    python benchmarks/serving.py --quick [--text]   # a check that it runs: 1 s per point, c=1
        # and 8, 3 s soak, digits trained 1 epoch, a 2-layer text model at 32 tokens; ~1-2 min;
        # a temp folder (or --out DIR), never benchmarks/RESULTS.md

Needs Debian's `wrk` on PATH (`apt-get install wrk`).

Every model served is a package danlu writes: digits and the text model by `danlu.run` (trained
briefly, with `evaluate.gate: {}` so that a short training never stops at the gate), the wide CNN
by the export stage's `build_package` from a model folder with random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "serving.json"
TEXT_RESULTS = HERE / "results" / "serving_text.json"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
CONCURRENCY = (1, 8, 32, 64)

# wrk Lua: a fixed body (or 1 in `bad_every` malformed), per-thread status counts, and a JSON
# summary line with the percentiles wrk's own report lacks (p95).
LUA = r"""
local good = io.open("%(good)s"):read("*a")
local bad = io.open("%(bad)s"):read("*a")
local bad_every = %(bad_every)d
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; s2 = 0; s4 = 0; s5 = 0; sother = 0 end
function request()
  n = n + 1
  if bad_every > 0 and n %% bad_every == 0 then return wrk.format(nil, nil, nil, bad) end
  return wrk.format(nil, nil, nil, good)
end
function response(status, headers, body)
  if status >= 500 then s5 = s5 + 1 elseif status >= 400 then s4 = s4 + 1
  elseif status >= 200 and status < 300 then s2 = s2 + 1 else sother = sother + 1 end
end
function done(summary, latency, requests)
  local c = {s2 = 0, s4 = 0, s5 = 0, sother = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, ' ..
    '"write_errors": %%d, "timeouts": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "status_2xx": %%d, "status_4xx": %%d, "status_5xx": %%d, "status_other": %%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, c.s2, c.s4, c.s5, c.sother))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}


def start(cmd: list[str], url: str, log: Path) -> subprocess.Popen:
    """Start a server process and wait until /v2/health/ready answers 200."""
    import httpx

    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} died:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd} not ready in 120 s")


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def wrk(url: str, good: Path, bad: Path, concurrency: int, seconds: float,
        bad_every: int = 0) -> dict:
    """One wrk run; returns its JSON summary plus requests/s."""
    script = good.with_suffix(f".{bad_every}.lua")
    script.write_text(LUA % {"good": good, "bad": bad, "bad_every": bad_every})
    threads = max(1, min(2, concurrency))
    cmd = [WRK, "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds:g}s",
           "--timeout", "30s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    res = json.loads(line[len("WRKJSON "):])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    for k in ("p50", "p95", "p99", "max"):
        res[f"{k}_ms"] = res.pop(f"{k}_us") / 1000
    return res


# ---- the models -------------------------------------------------------------------------------

def build_models(work: Path, digits_epochs: int) -> dict[str, dict]:
    """{name: {"package": dir, "torch": model folder}} for digits and the wide CNN."""
    import danlu

    models = {}
    # A few epochs are enough to serve (speed does not depend on accuracy); no gate, so a short
    # training is never stopped before the package (5 epochs reached 0.878 < the recipe's 0.95).
    run = danlu.run(ROOT / "recipes" / "digits.yaml", out=work / "runs",
                    overrides={"train.epochs": digits_epochs, "evaluate.gate": {}})
    models["digits"] = {"package": run.package_dir, "torch": run.run_dir / "train" / "model"}
    models["wide"] = wide_cnn(work)
    return models


def wide_cnn(work: Path, rows: int = 64) -> dict[str, Path]:
    """The compute-heavy one: danlu's CNN with three conv blocks (32, 64, 128 channels) on a
    1x64x64 image, random weights (speed does not depend on them), saved as a model folder and
    packaged by the export stage's own `build_package` (ONNX Runtime, parity-checked)."""
    import numpy as np
    import torch

    from danlu.export.config import ExportConfig
    from danlu.export.package import build_package
    from danlu.features import features, heads
    from danlu.models import family
    from danlu.models.cnn import CNNConfig
    from danlu.models.load import load_model, save_model

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 17, (rows, 4096)).astype(np.float64)
    image = features["image"]("pixels", [f"p{i}" for i in range(4096)], {"shape": [1, 64, 64]})
    image.partial_fit(pixels)
    head = heads["category"](None, [str(i) for i in range(10)])
    cfg = CNNConfig(channels=[32, 64, 128], hidden=256, dropout=0.0)
    torch.manual_seed(0)
    net = family(cfg).build(cfg, [image], head).eval()
    folder = save_model(work / "wide-torch", cfg, net, [image], head)
    pkg = work / "wide-package"
    build_package(pkg, load_model(folder), {"pixels": pixels}, rng.integers(0, 10, rows),
                  ExportConfig(), name="wide", version="1")
    return {"package": pkg, "torch": folder}


def model_name(pkg: Path) -> str:
    """The name a package is served under (/v2/models/NAME/infer)."""
    from danlu.package import read_meta

    return read_meta(pkg).name


def bodies(work: Path, pkg: Path) -> tuple[Path, Path]:
    """A one-row KServe v2 JSON body with realistic values (pixels 0-16), and a malformed one."""
    import numpy as np

    from danlu.package import read_meta

    meta = read_meta(pkg)
    name, spec = meta.name, meta.inputs[0]
    features = spec.shape[-1]
    values = np.random.default_rng(0).integers(0, 17, features).astype(float).tolist()
    good = work / f"{name}.json"
    good.write_text(json.dumps({"inputs": [{"name": spec.name, "shape": [1, features],
                                            "datatype": "FP32", "data": values}]}))
    bad = work / f"{name}.bad.json"
    bad.write_text(f'{{"inputs": [{{"name": "{spec.name}", "shape": [1, 3], "datatype": "FP32", '
                   '"data": [1, 2')  # truncated JSON
    return good, bad


# ---- the soak ---------------------------------------------------------------------------------

def soak(url: str, pid: int, good: Path, bad: Path, seconds: float, concurrency: int = 32,
         warmup: float = 5.0) -> dict:
    """wrk with 1% malformed bodies; RSS after a warm-up vs at the end; 5xx and liveness."""
    import psutil

    proc = psutil.Process(pid)
    wrk(url, good, bad, concurrency, warmup, bad_every=100)  # allocator and caches settle
    rss_start = proc.memory_info().rss
    samples: list[int] = []
    stop_flag = threading.Event()

    def sample() -> None:
        while not stop_flag.wait(1.0):
            try:
                samples.append(proc.memory_info().rss)
            except psutil.NoSuchProcess:
                return

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    res = wrk(url, good, bad, concurrency, seconds, bad_every=100)
    stop_flag.set()
    watcher.join()
    alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    rss_end = proc.memory_info().rss if alive else 0
    res.update(seconds=seconds, concurrency=concurrency, alive=alive,
               rss_start_mb=rss_start / 2**20, rss_end_mb=rss_end / 2**20,
               rss_max_mb=max(samples, default=rss_end) / 2**20,
               rss_growth=(rss_end - rss_start) / rss_start,
               malformed_fraction=res["status_4xx"] / max(res["requests"], 1))
    return res


# ---- text -------------------------------------------------------------------------------------

# One request = one news paragraph of ~100 tokens (under max_length 128: nothing truncated).
PARAGRAPH = ("Shares in the group rose sharply on Tuesday after it reported record quarterly "
             "profits, helped by strong demand for its cloud services and a recovery in "
             "advertising revenue. Analysts had expected a weaker result because of rising costs "
             "and the slowdown in consumer spending, but the company said orders from business "
             "customers grew faster than at any time since it listed, and it raised its forecast "
             "for the rest of the year.")
TEXT_RUNTIMES = ("onnxruntime", "onnxruntime-int8", "torch")


def text_package(work: Path, quick: bool) -> tuple[Path, int]:
    """(package folder, max_length) of a text model that `danlu.run` trains and exports: MiniLM-L6
    (all 6 layers, max_length 128) fine-tuned for 1 epoch on 150 BBC News articles (speed does
    not depend on how well it learned; no gate), exported with every runtime (torch, ORT fp32,
    ORT int8). --quick: tests/textdata.py's tiny recipe (2 layers, 32 tokens), 1 epoch."""
    import danlu

    sys.path.insert(0, str(ROOT))  # the BBC articles and the tiny recipe the tests use
    from tests.textdata import bbc_texts, tiny_text_recipe, write_jsonl

    src = write_jsonl(work / "bbc.jsonl", *bbc_texts(0, 30))
    recipe = tiny_text_recipe(src, name="news")
    if not quick:
        recipe["model"].update(layers=None, max_length=128)
    recipe["train"]["epochs"] = 1
    recipe["export"] = {**recipe.get("export", {}), "int8": True}
    run = danlu.run(recipe, out=work / "runs")
    return run.package_dir, recipe["model"]["max_length"]


def text_benchmark(bench, seconds: float, concurrency: int = 8, quick: bool = False) -> dict:
    """Raw-text requests/s through `danlu serve` for one MiniLM-L6 text package (6 layers,
    max_length 128), served by ORT fp32, ORT int8 and torch (bf16 where the CPU has it;
    `--runtime`), one after another at the same concurrency."""
    from danlu.package import read_meta

    work = Path(tempfile.mkdtemp(prefix="danlu-bench-text-"))
    try:
        pkg, max_length = text_package(work, quick)
        meta = read_meta(pkg)
        name, text_input = meta.name, meta.inputs[0].name
        good, bad = work / "text.json", work / "text.bad.json"
        good.write_text(json.dumps({"inputs": [{"name": text_input, "datatype": "BYTES",
                                                "shape": [1], "data": [PARAGRAPH]}]}))
        bad.write_text(json.dumps({"inputs": [{"name": text_input, "datatype": "BYTES",
                                               "shape": [1], "data": [1]}]}))
        cfg = meta.dump()
        layers = "2 layers" if quick else "6 layers"
        out: dict = {"seconds_per_point": seconds, "concurrency": concurrency, "quick": quick,
                     "model": f"MiniLM-L6 ({layers}, 384 wide), {len(cfg['labels'])} classes, "
                              f"max_length {max_length}",
                     "dtypes": {rt: cfg["runtimes"][rt]["dtype"] for rt in TEXT_RUNTIMES},
                     "text_tokens": _tokens(pkg, max_length), "runtimes": {}}
        for runtime in TEXT_RUNTIMES:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            proc = start([sys.executable, "-m", "danlu.serve", str(pkg), "--port", str(port),
                          "--runtime", runtime], base, work / f"text-{runtime}.log")
            try:
                wrk(f"{base}/v2/models/{name}/infer", good, bad, concurrency, 2.0)  # warm-up
                r = wrk(f"{base}/v2/models/{name}/infer", good, bad, concurrency, seconds)
            finally:
                stop(proc)
            out["runtimes"][runtime] = r
            print(f"text {runtime:18s} c={concurrency} {r['rps']:7.1f} req/s  "
                  f"p50 {r['p50_ms']:7.1f}  p99 {r['p99_ms']:7.1f} ms  "
                  f"non-2xx {r['status_4xx'] + r['status_5xx']}", flush=True)
        bench.finish()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _tokens(pkg: Path, max_length: int) -> int:
    from danlu.data.tokenize import TextEncoder

    return int(TextEncoder(pkg / "tokenizer.json", max_length).encode([PARAGRAPH]).lengths[0])


def write_text_rows(bench, res: dict) -> None:
    """torch bf16 and ORT int8 vs ORT fp32 rows in RESULTS.md (replacing the earlier ones)."""
    base = res["runtimes"]["onnxruntime"]
    rows = []
    torch_label = "torch bf16" if res["dtypes"]["torch"] == "bfloat16" else "torch fp32"
    for runtime, label in (("torch", torch_label), ("onnxruntime-int8", "ORT int8")):
        r = res["runtimes"][runtime]
        rows.append(f"| serving text MiniLM-L6 ({res['text_tokens']} tokens/request), "
                    f"c={res['concurrency']}, req/s (p99 ms): {label} vs ORT fp32 | "
                    f"{r['rps']:.1f} ({r['p99_ms']:.0f}) | {base['rps']:.1f} "
                    f"({base['p99_ms']:.0f}) | {r['rps'] / base['rps']:.2f}x | {bench.cell()}")
    bench.rows("| serving text MiniLM-L6", rows)


# ---- main -------------------------------------------------------------------------------------

def servers(models: dict, name: str, port: int) -> dict[str, list[str]]:
    py = sys.executable
    pkg = str(models[name]["package"])
    return {"danlu_batching": [py, "-m", "danlu.serve", pkg, "--port", str(port)],
            "danlu_no_batching": [py, "-m", "danlu.serve", pkg, "--port", str(port),
                                  "--no-batching"],
            "baseline_fastapi_torch": [py, str(HERE / "baseline_fastapi_torch.py"),
                                       str(models[name]["torch"]), str(port)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="wrk duration per point")
    ap.add_argument("--soak-seconds", type=float, default=300.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    ap.add_argument("--models", nargs="+", default=["digits", "wide"])
    ap.add_argument("--servers", nargs="+", default=["danlu_batching", "danlu_no_batching",
                                                     "baseline_fastapi_torch"])
    ap.add_argument("--extra", default="", help='extra danlu serve options, e.g. "--threads 1"')
    ap.add_argument("--no-write", action="store_true", help="print only (for tuning runs)")
    ap.add_argument("--text", action="store_true",
                    help="only the text rows: one MiniLM-L6 package, ORT fp32 / int8 / torch bf16")
    ap.add_argument("--quick", action="store_true",
                    help="a check that it runs: 1 s per point at c=1 and 8, a 3 s soak, digits "
                         "trained 1 epoch, a tiny text model; never writes benchmarks/RESULTS.md")
    from _common import Bench, add_args  # benchmarks/ (tests import this file for soak())

    add_args(ap)
    args = ap.parse_args()
    if not Path(WRK).is_file():
        raise SystemExit("serving.py needs the wrk load generator on PATH: apt-get install wrk")
    if args.quick:
        args.seconds, args.soak_seconds, args.concurrency = 1.0, 3.0, [1, 8]
    bench = Bench.start("serving_text" if args.text else "serving", args)
    if args.text:
        res = text_benchmark(bench, args.seconds, quick=args.quick)
        if not args.no_write:
            bench.save(TEXT_RESULTS.name, res)
            write_text_rows(bench, res)
        return
    work = Path(tempfile.mkdtemp(prefix="danlu-bench-serving-"))
    try:
        results = load_and_soak(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.finish()
    if args.no_write:
        return
    bench.save(RESULTS.name, results)
    write_table(bench, results)


def load_and_soak(args: argparse.Namespace, work: Path) -> dict:
    """Every model x server x concurrency under wrk, then the soak; serving.json's content."""
    models = build_models(work, digits_epochs=1 if args.quick else 5)
    results: dict = {"seconds_per_point": args.seconds, "load": {}, "soak": {}}
    for name, m in models.items():
        if name not in args.models:
            continue
        good, bad = bodies(work, m["package"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v2/models/{model_name(m['package'])}/infer"
        for server, cmd in servers(models, name, port).items():
            if server not in args.servers:
                continue
            if server.startswith("danlu"):
                cmd = cmd + args.extra.split()
            proc = start(cmd, base, work / f"{name}-{server}.log")
            try:
                wrk(url, good, bad, 8, 1.0 if args.quick else 2.0)  # warm-up
                for c in args.concurrency:
                    r = wrk(url, good, bad, c, args.seconds)
                    results["load"].setdefault(name, {}).setdefault(server, {})[str(c)] = r
                    print(f"{name:7s} {server:24s} c={c:<3d} {r['rps']:8.1f} req/s  "
                          f"p50 {r['p50_ms']:7.2f}  p95 {r['p95_ms']:7.2f}  "
                          f"p99 {r['p99_ms']:7.2f} ms  non-2xx {r['status_4xx'] + r['status_5xx']}",
                          flush=True)
            finally:
                stop(proc)
    # Soak: danlu serve, batching on, the digits model, concurrency 32, 1% malformed.
    pkg = models["digits"]["package"]
    good, bad = bodies(work, pkg)
    port = free_port()
    cmd = servers(models, "digits", port)["danlu_batching"]
    proc = start(cmd, f"http://127.0.0.1:{port}", work / "soak.log")
    try:
        s = soak(f"http://127.0.0.1:{port}/v2/models/{model_name(pkg)}/infer", proc.pid, good,
                 bad, args.soak_seconds, warmup=1.0 if args.quick else 5.0)
    finally:
        s_exit = stop(proc)
    s["exit_code_after_sigterm"] = s_exit
    results["soak"] = s
    print(f"soak {s['seconds']:.0f}s c=32: {s['requests']} requests, 5xx {s['status_5xx']}, "
          f"4xx {s['status_4xx']} ({100 * s['malformed_fraction']:.2f}%), alive {s['alive']}, "
          f"RSS {s['rss_start_mb']:.1f} -> {s['rss_end_mb']:.1f} MB "
          f"({100 * s['rss_growth']:+.1f}%), exit {s_exit}", flush=True)
    return results


def write_table(bench, results: dict) -> None:
    """This run's summary rows and its full load table in RESULTS.md (replacing the earlier)."""
    rows = []
    for name, per in results["load"].items():
        ours = per.get("danlu_batching", {}).get("32")
        base = per.get("baseline_fastapi_torch", {}).get("32")
        if not (ours and base):
            continue
        rows.append(f"| serving {name}, c=32, req/s (p99 ms) | {ours['rps']:.0f} "
                    f"({ours['p99_ms']:.0f}) | {base['rps']:.0f} ({base['p99_ms']:.0f}) | "
                    f"{ours['rps'] / base['rps']:.1f}x | {bench.cell()}")
    s = results["soak"]
    rows.append(f"| serving soak {s['seconds']:.0f} s, c=32, 1% malformed | 5xx {s['status_5xx']}, "
                f"alive {s['alive']}, RSS {100 * s['rss_growth']:+.1f}% | - | - | {bench.cell()}")
    bench.rows(("| serving digits,", "| serving wide,", "| serving soak"), rows)
    bench.section("### serving.py,", detail_table(bench, results), end="table")


def detail_table(bench, results: dict) -> str:
    """The full load table: every model, server and concurrency."""
    lines = [f"### serving.py, {bench.note()[1:-1]} (load generator wrk on the same cores)", "",
             "| model | server | concurrency | req/s | p50 ms | p95 ms | p99 ms | non-2xx |",
             "|---|---|---|---|---|---|---|---|"]
    for name, per in results["load"].items():
        for server, points in per.items():
            for c, r in points.items():
                lines.append(f"| {name} | {server} | {c} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
                             f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                             f"{r['status_4xx'] + r['status_5xx'] + r['status_other']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
