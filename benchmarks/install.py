"""Install size and `danlu serve` start-up: the serving-only install vs the full one.

Two fresh venvs (no system site-packages), each with danlu installed from a copy of this
checkout's sources: `serve` = `pip install '.[serve]'` (ONNX Runtime, FastAPI, uvicorn: no
torch), `full` = `pip install -c constraints/cpu.txt '.[all]'` (what `make` installs, less the
test tools). For each: the size of site-packages (bytes of every file pip left there, bytecode
included), the number of distributions, and the time from starting `danlu serve PACKAGE` to
the first 200 on /v2/health/ready (a digits package trained here for 1 epoch; start-ups
interleaved serve/full, median). pip's wheel cache is used; its install time is recorded but
depends on that cache, so it is not a result.

    python benchmarks/install.py                  # writes benchmarks/results/install.json + RESULTS.md rows
    python benchmarks/install.py --quick    # a check that it runs: 1 start-up each, in a temp
        # folder (benchmarks/_common.py: never benchmarks/RESULTS.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import Bench, add_args

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# name -> (extras, pip's extra arguments)
SIDES = {"serve": ("serve", []),
         "full": ("all", ["-c", str(ROOT / "constraints" / "cpu.txt")])}


def clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH or an active venv: each venv runs its own danlu."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def build_venv(work: Path, name: str) -> dict:
    """A fresh venv with danlu[extras] installed from a copy of the sources; its sizes."""
    extras, args = SIDES[name]
    src = work / f"src-{name}"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, src / f)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = work / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    started = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args,
                    f"{src}[{extras}]"], check=True, env=clean_env())
    install_s = time.perf_counter() - started
    site = next((venv / "lib").glob("python3*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.util as u; "
                            "print(bool(u.find_spec('torch')), bool(u.find_spec('transformers')))"],
                           capture_output=True, text=True, check=True, env=clean_env())
    torch, transformers = (w == "True" for w in probe.stdout.split())
    return {"extras": extras, "pip_args": args, "site_packages_bytes": size,
            "distributions": len(list(site.glob("*.dist-info"))), "torch": torch,
            "transformers": transformers, "install_s": round(install_s, 1), "venv": str(venv)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_up(venv: Path, package: Path, timeout: float = 120.0) -> float:
    """Seconds from starting `danlu serve PACKAGE` to the first 200 on /v2/health/ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    started = time.perf_counter()
    proc = subprocess.Popen([str(venv / "bin" / "danlu"), "serve", str(package), "--port", str(port),
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=clean_env())
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"danlu serve exited with {proc.returncode} ({venv})")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"danlu serve not ready after {timeout} s ({venv})")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def digits_package(work: Path) -> Path:
    """The shipped digits recipe trained 1 epoch (no gate): any ONNX package serves here."""
    import danlu

    res = danlu.run(ROOT / "recipes" / "digits.yaml", out=work / "runs",
                    overrides={"train.epochs": 1, "evaluate.gate": {}, "preprocess.augment": []})
    return res.package_dir


def measure(work: Path, starts: int) -> dict:
    package = digits_package(work)
    sides = {name: build_venv(work, name) for name in SIDES}
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    for _ in range(starts):  # interleaved, so that a change of load hits both sides alike
        for name, side in sides.items():
            times[name].append(round(start_up(Path(side["venv"]), package), 3))
    for name, side in sides.items():
        side["startup_s"] = times[name]
        side["startup_median_s"] = statistics.median(times[name])
        del side["venv"]
    return {"starts": starts, "sides": sides}


def rows(res: dict, cell: str) -> list[str]:
    """The size and start-up rows of benchmarks/RESULTS.md."""
    s, f = res["sides"]["serve"], res["sides"]["full"]
    mb_s, mb_f = s["site_packages_bytes"] / 1e6, f["site_packages_bytes"] / 1e6
    return [f"| install: site-packages MB, `danlu[serve]` (torch {s['torch']}) vs `danlu[all]` "
            f"({s['distributions']} vs {f['distributions']} distributions) | {mb_s:,.0f} | "
            f"{mb_f:,.0f} | {mb_s / mb_f:.2f}x | {cell}",
            f"| install: `danlu serve` digits start-up to /v2/health/ready, s (median of "
            f"{res['starts']}), `[serve]` vs `[all]` | {s['startup_median_s']:.2f} | "
            f"{f['startup_median_s']:.2f} | {s['startup_median_s'] / f['startup_median_s']:.2f}x | "
            f"{cell}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=5, help="start-ups per side (median)")
    ap.add_argument("--quick", action="store_true",
                    help="a check that it runs: 1 start-up per side; never writes RESULTS.md")
    add_args(ap)
    args = ap.parse_args()
    bench = Bench.start("install", args)
    work = Path(tempfile.mkdtemp(prefix="danlu-bench-install-"))
    try:
        res = measure(work, 1 if args.quick else args.starts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bench.finish()
    bench.save("install.json", res)
    print(json.dumps(res, indent=2))
    bench.rows("| install: ", rows(res, bench.cell()))


if __name__ == "__main__":
    main()
