"""The package's runtimes, chosen by measurement: every candidate the model's family can be
served in is written as an artifact, loaded through `danlu.serve.runtimes.load_runtime` (the very
object and options `danlu serve` builds), run on the whole test split against float32 PyTorch
(parity gate) and timed interleaved with it at batch 1 and 32 (speed gate, where the reference
itself can be served). The fastest at batch 32 among those that pass is the package's default.
The export stage and the compress stage both call `measure_runtimes`."""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from danlu.errors import ParityError, RecipeError
from danlu.features.base import count, take

__all__ = ["ARTIFACTS", "HF_FOLDER", "Candidate", "choose", "measure_runtimes", "time_interleaved",
           "write_artifacts"]

# runtime -> (artifact key in danlu-model.json, file or folder in the package)
ARTIFACTS = {"onnxruntime": ("onnx", "model.onnx"), "onnxruntime-int8": ("onnx_int8", "model.int8.onnx"),
             "torch": ("torch", "torch")}
# The package's Hugging Face folder (export.hf), which the torch runtime then serves from.
HF_FOLDER = "hf"


@dataclass
class Candidate:
    """One runtime of the package while it is measured."""

    runtime: str
    dtype: str
    size_bytes: int
    reasons: list[str] = field(default_factory=list)
    parity: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    outputs: tuple[np.ndarray, ...] | None = None
    loaded: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons

    def entry(self) -> dict[str, Any]:
        return {"artifact": ARTIFACTS[self.runtime][0], "dtype": self.dtype, "passed": self.passed,
                "reasons": list(self.reasons), "parity": self.parity,
                "latency_ms": {k: round(v, 4) if isinstance(v, float) else v
                               for k, v in self.latency_ms.items()},
                "size_bytes": self.size_bytes, "loaded": self.loaded}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
        else path.stat().st_size


def torch_dtype(cfg: Any) -> str:
    """The torch runtime's dtype: the recipe's, else bfloat16 where the CPU runs it natively."""
    if cfg.torch_dtype != "auto":
        return cfg.torch_dtype
    from danlu.serve.runtimes.torch import native_bf16

    return "bfloat16" if native_bf16() else "float32"


def write_artifacts(model: Any, out: Path, runtimes: list[str], opset: int,
                    hf: bool = False) -> tuple[dict[str, int], dict[str, str]]:
    """Write the artifact of each runtime into `out`, and hf/ when `hf` and the model's family
    has a Hugging Face form: a model folder too, so the torch runtime is served from it (one
    copy of the weights). Returns ({runtime: bytes}, danlu-model.json's artifacts: {key: path})."""
    from danlu.export.onnx import export_onnx

    files = {ARTIFACTS[rt][0]: ARTIFACTS[rt][1] for rt in runtimes}
    if hf and model.family.hf_folder(model, out / HF_FOLDER):
        files["hf"] = HF_FOLDER
        if "torch" in runtimes:
            files["torch"] = HF_FOLDER
    onnx_path = out / ARTIFACTS["onnxruntime"][1]
    if {"onnxruntime", "onnxruntime-int8"} & set(runtimes):
        export_onnx(model.packaged(), onnx_path, opset)
    if "onnxruntime-int8" in runtimes:
        from danlu.compress.quantize.onnx_quant import quantize_dynamic_int8

        quantize_dynamic_int8(onnx_path, out / ARTIFACTS["onnxruntime-int8"][1])
    if "torch" in runtimes and files["torch"] != HF_FOLDER:
        shutil.copytree(model.folder, out / files["torch"], dirs_exist_ok=True)
    sizes = {rt: _size(out / files[ARTIFACTS[rt][0]]) for rt in runtimes}
    if "onnxruntime" not in runtimes:  # model.onnx was only the int8 file's source
        onnx_path.unlink(missing_ok=True)
    return sizes, files


def parity(ref: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...], atol: float,
           min_label_agreement: float, head: Any = None) -> dict[str, Any]:
    """Max |difference| of the first output and agreement of the decoded labels (the head's
    `agreement`; a head without labels, such as a regression's value, has none). The tolerance
    is the head's for its first output (`parity_atol`: a value's scales with the target)."""
    rows = len(ref[0])
    if head is not None:
        atol = head.parity_atol(atol)
    diff = float(np.abs(np.asarray(got[0], np.float64) - ref[0]).max()) if rows else 0.0
    agree = (head.agreement(ref, got) if head is not None
             else float((got[-1] == ref[-1]).mean())) if rows else 1.0
    out = {"rows": rows, "label_agreement": agree, "max_abs_diff": diff, "atol": atol,
           "min_label_agreement": min_label_agreement,
           "passed": bool(diff <= atol and (agree is None or agree >= min_label_agreement))}
    if not out["passed"]:
        labels = ("" if agree is None else f", labels agree with float32 PyTorch on {agree:.2%} "
                  f"of {rows} test rows (need {min_label_agreement:.0%})")
        out["reason"] = (f"parity: max |difference| {diff:.3g} (tolerance {atol:g}) on {rows} "
                         f"test rows{labels}")
    return out


def tolerance(cfg: Any, dtype: str) -> tuple[float, float]:
    """(atol, min label agreement): float32 exact labels, bf16/int8 looser (export.tolerances)."""
    if dtype == "float32":
        return cfg.parity_atol, 1.0
    from danlu.export.config import _tolerances

    t = cfg.tolerances.get(dtype) or _tolerances()[dtype]
    return t.atol, t.min_label_agreement


Run = Callable[[dict[str, np.ndarray]], tuple[np.ndarray, ...]]


def latency_inputs(features: list[Any], values: dict[str, np.ndarray]) -> dict[int, dict]:
    """Batches of 1 and 32 real test rows; the costliest ones (longest texts) where a feature
    says what a row costs, so latency is measured at the recipe's sequence length."""
    keys = [k for f in features if (k := f.sort_key(values[f.name])) is not None]
    n = count(values)
    order = np.argsort(-np.asarray(keys[0]), kind="stable") if keys else np.arange(n)
    idx = np.resize(order[:32], 32)
    return {1: take(values, idx[:1]), 32: take(values, idx)}


def time_interleaved(runners: dict[str, Run], inputs: dict[int, dict], runs: int = 10,
                     warmup: int = 2, block: int = 5) -> dict[str, dict[str, float]]:
    """Median ms per runner at each batch size, timed in alternating blocks of `block` runs so
    a load change on the shared machine hits every runner alike."""
    out: dict[str, dict[str, float]] = {name: {} for name in runners}
    for b, feed in inputs.items():
        times: dict[str, list[float]] = {name: [] for name in runners}
        for r in runners.values():
            for _ in range(warmup):
                r(feed)
        for _ in range(max(1, -(-runs // block))):
            for name, r in runners.items():
                for _ in range(block):
                    t0 = time.perf_counter()
                    r(feed)
                    times[name].append((time.perf_counter() - t0) * 1e3)
        for name in runners:
            out[name][f"b{b}"] = statistics.median(times[name])
    return out


def measure_runtimes(pkg_dir: Path, model: Any, values: dict[str, np.ndarray], cfg: Any,
                     runtimes: list[str], sizes: dict[str, int]
                     ) -> tuple[dict[str, Candidate], dict[str, Any], tuple[np.ndarray, ...]]:
    """Load each runtime of the package in `pkg_dir` as `danlu serve` does, check its parity on
    `values` (client values of the test rows) against float32 PyTorch and time it interleaved
    with it. Returns (candidates, reference measurements, reference outputs)."""
    import torch

    from danlu.models.packaged import predict
    from danlu.serve.config import ServeConfig
    from danlu.serve.package import load_package
    from danlu.serve.runtimes import load_runtime

    torch.set_num_threads(cfg.threads)
    module = model.packaged()
    ref_out = predict(module, values)
    package = load_package(pkg_dir)
    names = [s.name for s in package.outputs]
    loaded, cands = {}, {}
    for rt in runtimes:
        scfg = ServeConfig(runtime=rt, intra_op_threads=cfg.threads, inference_workers=1)
        runtime = load_runtime(package, scfg)
        loaded[rt] = runtime
        entry = package.runtimes.get(rt, {})
        c = cands[rt] = Candidate(rt, entry.get("dtype", "float32"), sizes[rt],
                                  loaded=runtime.describe())
        got = runtime.run_rows(values, names)
        c.outputs = tuple(got[n] for n in names)
        atol, agree = tolerance(cfg, c.dtype)
        c.parity = parity(ref_out, c.outputs, atol, agree, model.head)
        if not c.parity["passed"]:
            c.reasons.append(c.parity.pop("reason"))

    def eager(v: dict) -> tuple:
        with torch.inference_mode():
            return module(*module.feed(v))

    runners = {"reference": eager,
               **{rt: (lambda v, r=r: r.run(v)) for rt, r in loaded.items()}}
    timed = time_interleaved(runners, latency_inputs(module.features, values),
                             runs=cfg.latency_runs)
    ref = {"runtime": "torch", "dtype": "float32", "latency_ms": timed["reference"],
           "threads": cfg.threads, "runs": cfg.latency_runs}
    servable = model.family.fallback is not None  # else nothing to fall back to: no speed gate
    for rt, c in cands.items():
        c.latency_ms = dict(timed[rt])
        base, ms = ref["latency_ms"]["b32"], c.latency_ms["b32"]
        c.latency_ms["speedup_b32"] = base / ms if ms > 0 else float("inf")
        if servable and ms > base * (1 + cfg.speed_tolerance):
            c.reasons.append(f"speed: {ms:.1f} ms at batch 32 vs {base:.1f} ms for float32 PyTorch "
                             f"eager ({ms / base:.2f}x, tolerance {1 + cfg.speed_tolerance:.2f}x)")
    return cands, ref, ref_out


def choose(cands: dict[str, Candidate], override: str, fallback: str | None) -> tuple[str, str]:
    """(runtime, why): export.runtime if set, else the fastest at batch 32 among those passing;
    the family's fallback (float32 PyTorch, the reference) when none passes, else an error."""
    if override != "auto":
        if override not in cands:
            raise RecipeError("export.runtime", got=override,
                              expected=f"one of auto, {', '.join(cands)} (the candidates built)",
                              hint="set export.int8: true to build onnxruntime-int8")
        c = cands[override]
        note = "" if c.passed else f" although it failed: {'; '.join(c.reasons)}"
        return override, f"export.runtime: {override} in the recipe{note}"
    ok = [c for c in cands.values() if c.passed]
    if not ok:
        reasons = "; ".join(f"{k}: {'; '.join(c.reasons)}" for k, c in cands.items())
        if fallback is None or fallback not in cands:
            raise ParityError(f"no runtime of the package passes its gates ({reasons})")
        return fallback, f"no candidate passed its gates ({reasons}): float32 {fallback} is served"
    best = min(ok, key=lambda c: c.latency_ms["b32"])
    return best.runtime, (f"{best.runtime} ({best.dtype}): the fastest at batch 32 "
                          f"({best.latency_ms['b32']:.2f} ms, {best.latency_ms['speedup_b32']:.2f}x "
                          f"float32 PyTorch eager) of {len(ok)} passing parity"
                          + (" and speed" if len(cands) > 1 else ""))
