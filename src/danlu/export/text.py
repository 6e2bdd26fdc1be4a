"""Text (transformer) export: runtime candidates, each gated on parity and speed, chosen by measurement.

From a Hugging Face classifier folder (the run's `train/model/`) this builds the candidates the
server can run (docs/text.md):

- `onnxruntime`: ONNX fp32 of the packaged module (input_ids, attention_mask -> probabilities,
  label), dynamic batch and sequence axes, one file;
- `onnxruntime-int8`: ONNX Runtime dynamic int8, per-channel (the small file);
- `torch`: the HF folder itself (safetensors), served in bfloat16 where the CPU has bf16 kernels
  (AMX / AVX-512 BF16), else float32.

Each candidate runs the real test texts and is compared with the float32 PyTorch model (the
reference: label agreement and max |probability diff|, tolerance per dtype) and timed against it
at batch 1 and 32 (same threads, warm-up, interleaved blocks). The default runtime is the fastest
at batch 32 among those that pass both gates. Pure functions over (folder, texts, labels): the
export stage, the compress stage and benchmarks/transformer.py all call them.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.data.tokenize import Encoded, TextEncoder
from danlu.errors import RecipeError
from danlu.models.text import TextPackaged, load_text_classifier

__all__ = ["ARTIFACTS", "Candidate", "OrtRunner", "TextPackaged", "TorchRunner", "bf16_supported",
           "build_candidates", "choose_runtime", "export_text_onnx", "latency_inputs",
           "load_runner", "parity", "predict_texts", "quantize_int8", "time_runners"]

# runtime name -> artifact key in danlu-model.json (the contract with serve/runtimes/).
ARTIFACTS = {"torch": "torch", "onnxruntime": "onnx", "onnxruntime-int8": "onnx_int8"}
FILES = {"onnx": "model.onnx", "onnx_int8": "model.int8.onnx", "torch": "torch"}
# A runner: (input_ids, attention_mask) int64 [B, L] -> (probabilities fp32 [B, N], label int64 [B]).
Runner = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def bf16_supported() -> bool:
    """True where this CPU has native bf16 matrix kernels (AMX-BF16 or AVX-512 BF16), the case
    in which PyTorch bf16 is the fast path (ENV.md: 4.1x eager fp32 for MiniLM at batch 32).
    Elsewhere bf16 is emulated and slower than fp32, so the torch runtime stays fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore").split()
    except OSError:
        return False
    return ("amx_bf16" in flags or "avx512_bf16" in flags) and torch.backends.mkldnn.is_available()


def load_hf(folder: Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The HF sequence classifier in `folder` (safetensors, never the hub), cast, in eval mode."""
    return load_text_classifier(folder, dtype=torch.float32).to(dtype).eval()


class TorchRunner:
    """The `torch` runtime as the server runs it: HF model cast to dtype, inference mode,
    probabilities = softmax of fp32 logits, label = argmax."""

    def __init__(self, folder: Path, dtype: str = "float32", model: nn.Module | None = None) -> None:
        self.dtype = dtype
        self.module = TextPackaged(model if model is not None
                                   else load_hf(folder, getattr(torch, dtype))).eval()

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            probs, labels = self.module(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
        return probs.float().numpy(), labels.numpy().astype(np.int64)


class OrtRunner:
    """An ONNX Runtime session on a text graph (fixed threads, no spinning: runners alternate)."""

    def __init__(self, path: Path, threads: int) -> None:
        from danlu.compress.measure import session

        self.sess = session(path, threads, spin=False)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs, labels = self.sess.run(["probabilities", "label"],
                                      {"input_ids": np.ascontiguousarray(input_ids, np.int64),
                                       "attention_mask": np.ascontiguousarray(attention_mask, np.int64)})
        return probs.astype(np.float32), labels.astype(np.int64)


def load_runner(pkg_or_dir: Path, runtime: str, dtype: str = "float32", threads: int = 2) -> Runner:
    """A runner for `runtime` over the artifacts in `pkg_or_dir` (a package or staging folder)."""
    if runtime == "torch":
        return TorchRunner(pkg_or_dir / FILES["torch"], dtype)
    return OrtRunner(pkg_or_dir / FILES[ARTIFACTS[runtime]], threads)


def export_text_onnx(hf_model: nn.Module, path: Path, opset: int = 20) -> Path:
    """The packaged module as one ONNX file with dynamic batch AND sequence axes."""
    from danlu.export.onnx import _quiet

    module = TextPackaged(hf_model.float().eval()).eval()
    max_len = int(getattr(hf_model.config, "max_position_embeddings", 512))
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("seq", min=1, max=max_len)
    # Example batch >= 2 and sequence > 1, or the exporter specializes those axes (ENV.md).
    example = (torch.ones(2, 8, dtype=torch.int64), torch.ones(2, 8, dtype=torch.int64))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with _quiet():
            program = torch.onnx.export(
                module, example, dynamo=True, opset_version=opset,
                input_names=["input_ids", "attention_mask"], output_names=["probabilities", "label"],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
                external_data=False)
            program.save(str(tmp), external_data=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def quantize_int8(src: Path, dst: Path) -> Path:
    """ORT dynamic int8 with per-channel weight scales (per-tensor and naive static int8 lose
    MiniLM's accuracy, ENV.md); the embedding table is quantized too, so the file is ~4x smaller."""
    from danlu.compress.quantize import quantize_dynamic

    # ORT's symbolic shape inference gives up on the exported attention graph ("Incomplete
    # symbolic shape inference"): skip it, keep ONNX shape inference and graph optimization.
    return quantize_dynamic(src, dst, per_channel=True, skip_symbolic_shape=True)


def predict_texts(runner: Runner, encoder: TextEncoder, texts: Sequence[str], batch: int = 32
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) for `texts`, tokenized by `encoder` in batches of `batch`."""
    probs, labels = [], []
    for i in range(0, len(texts), batch):
        enc = encoder.encode(list(texts[i:i + batch]))
        p, lab = runner(enc.input_ids, enc.attention_mask)
        probs.append(p)
        labels.append(lab)
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(probs), np.concatenate(labels)


def parity(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], atol: float,
           min_label_agreement: float) -> dict[str, Any]:
    """Label agreement and max |probability diff| of `got` vs the fp32 reference; passed/reason."""
    (p_ref, l_ref), (p, lab) = ref, got
    rows = len(l_ref)
    diff = float(np.abs(p - p_ref).max()) if rows else 0.0
    agree = float((lab == l_ref).mean()) if rows else 1.0
    out = {"rows": rows, "label_agreement": agree, "max_abs_diff": diff, "atol": atol,
           "min_label_agreement": min_label_agreement,
           "passed": bool(diff <= atol and agree >= min_label_agreement)}
    if not out["passed"]:
        out["reason"] = (f"parity: max |probability diff| {diff:.3g} (tolerance {atol:g}), labels "
                         f"agree with float32 PyTorch on {agree:.2%} of {rows} test texts (need "
                         f"{min_label_agreement:.0%})")
    return out


def latency_inputs(encoder: TextEncoder, texts: Sequence[str]) -> dict[int, Encoded]:
    """Batches of 1 and 32 real texts, the longest ones (so at max_length where texts are long
    enough): latency is measured at the recipe's sequence length, not on short texts."""
    order = np.argsort(-encoder.lengths(list(texts)), kind="stable")
    longest = [texts[int(i)] for i in order[:32]]
    b32 = (longest * (32 // max(1, len(longest)) + 1))[:32]
    return {1: encoder.encode(longest[:1]), 32: encoder.encode(b32)}


def time_runners(runners: dict[str, Runner], inputs: dict[int, Encoded], runs: int = 10,
                 warmup: int = 2, block: int = 5) -> dict[str, dict[str, float]]:
    """Median ms per runner at each batch size, timed in alternating blocks of `block` runs so a
    load change on the shared machine hits every runner alike (same threads for all)."""
    out: dict[str, dict[str, float]] = {name: {} for name in runners}
    for b, enc in inputs.items():
        times: dict[str, list[float]] = {name: [] for name in runners}
        for r in runners.values():
            for _ in range(warmup):
                r(enc.input_ids, enc.attention_mask)
        for _ in range(max(1, -(-runs // block))):
            for name, r in runners.items():
                for _ in range(block):
                    t0 = time.perf_counter()
                    r(enc.input_ids, enc.attention_mask)
                    times[name].append((time.perf_counter() - t0) * 1e3)
        for name in runners:
            out[name][f"b{b}"] = statistics.median(times[name])
        seq = int(enc.input_ids.shape[1])
    for name in runners:
        out[name]["seq"] = seq
    return out


@dataclass
class Candidate:
    """One runtime entry of danlu-model.json while it is measured."""

    runtime: str
    dtype: str
    runner: Runner
    size_bytes: int
    reasons: list[str] = field(default_factory=list)
    parity: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    predictions: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def passed(self) -> bool:
        return not self.reasons

    def entry(self) -> dict[str, Any]:
        return {"artifact": ARTIFACTS[self.runtime], "dtype": self.dtype, "passed": self.passed,
                "reasons": list(self.reasons), "parity": self.parity,
                "latency_ms": {k: round(v, 3) if isinstance(v, float) else v
                               for k, v in self.latency_ms.items()},
                "size_bytes": self.size_bytes}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() \
        else path.stat().st_size


def build_candidates(folder: Path, out: Path, texts: Sequence[str], cfg: Any, max_length: int,
                     reference: nn.Module | None = None, only: Sequence[str] | None = None
                     ) -> tuple[dict[str, Candidate], Candidate]:
    """Write the artifacts of every candidate into `out` (torch/, model.onnx, model.int8.onnx,
    tokenizer.json), run the parity and speed gates on `texts`; return (candidates, reference).

    `cfg` is an ExportConfig (tolerances, threads, latency runs, torch_dtype, int8); `only`
    limits the candidates (e.g. ["torch"] for a student); the reference is float32 PyTorch."""
    torch.set_num_threads(cfg.threads)
    folder, out = Path(folder), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = list(only) if only is not None else ["torch", "onnxruntime"] + (
        ["onnxruntime-int8"] if cfg.int8 else [])
    shutil.copy2(folder / "tokenizer.json", out / "tokenizer.json")
    encoder = TextEncoder(out / "tokenizer.json", max_length)
    hf = reference if reference is not None else load_hf(folder)
    ref = Candidate("torch", "float32", TorchRunner(folder, "float32", model=hf), 0)
    ref.predictions = predict_texts(ref.runner, encoder, texts)

    torch_dir = out / FILES["torch"]
    shutil.rmtree(torch_dir, ignore_errors=True)
    torch_dir.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy2(folder / f, torch_dir / f)
    cands: dict[str, Candidate] = {}
    if "torch" in wanted:
        dtype = cfg.torch_dtype if cfg.torch_dtype != "auto" else (
            "bfloat16" if bf16_supported() else "float32")
        cands["torch"] = Candidate("torch", dtype, TorchRunner(torch_dir, dtype), _size(torch_dir))
    if "onnxruntime" in wanted or "onnxruntime-int8" in wanted:
        onnx_path = export_text_onnx(load_hf(folder), out / FILES["onnx"], cfg.opset)
        if "onnxruntime" in wanted:
            cands["onnxruntime"] = Candidate("onnxruntime", "float32", OrtRunner(onnx_path, cfg.threads),
                                             _size(onnx_path))
        if "onnxruntime-int8" in wanted:
            q = quantize_int8(onnx_path, out / FILES["onnx_int8"])
            cands["onnxruntime-int8"] = Candidate("onnxruntime-int8", "int8",
                                                  OrtRunner(q, cfg.threads), _size(q))
    gate_candidates(cands, ref, encoder, texts, cfg)
    return cands, ref


def tolerance(cfg: Any, dtype: str) -> tuple[float, float]:
    """(atol, min label agreement) for a dtype: float32 exact labels, bf16/int8 looser."""
    if dtype == "float32":
        return cfg.parity_atol, 1.0
    from danlu.export.config import _tolerances

    t = cfg.tolerances.get(dtype) or _tolerances()[dtype]
    return t.atol, t.min_label_agreement


def gate_candidates(cands: dict[str, Candidate], ref: Candidate, encoder: TextEncoder,
                    texts: Sequence[str], cfg: Any) -> None:
    """Parity (every test text) and speed (interleaved timing with the reference) for each."""
    for c in cands.values():
        c.predictions = predict_texts(c.runner, encoder, texts)
        atol, agree = tolerance(cfg, c.dtype)
        result = parity(ref.predictions, c.predictions, atol, agree)
        if not result["passed"]:
            c.reasons.append(result.pop("reason"))
        c.parity = result
    timed = time_runners({"reference": ref.runner, **{k: c.runner for k, c in cands.items()}},
                         latency_inputs(encoder, texts), runs=cfg.latency_runs)
    ref.latency_ms = timed["reference"]
    for k, c in cands.items():
        c.latency_ms = timed[k]
        base, ms = ref.latency_ms["b32"], c.latency_ms["b32"]
        c.latency_ms["speedup_b32"] = base / ms if ms > 0 else float("inf")
        if ms > base * (1 + cfg.speed_tolerance):
            c.reasons.append(f"speed: {ms:.1f} ms at batch 32 vs {base:.1f} ms for float32 PyTorch "
                             f"eager ({ms / base:.2f}x, tolerance {1 + cfg.speed_tolerance:.2f}x)")


def choose_runtime(cands: dict[str, Candidate], override: str = "auto") -> tuple[str, str]:
    """(runtime, why): the recipe's `export.runtime` if set, else the fastest at batch 32 among
    the candidates that pass both gates; float32 torch (the reference itself) when none does."""
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
        return "torch", "no candidate passed both gates: float32 PyTorch (the reference) is served"
    best = min(ok, key=lambda c: c.latency_ms["b32"])
    return best.runtime, (f"{best.runtime} ({best.dtype}): the fastest at batch 32 "
                          f"({best.latency_ms['b32']:.1f} ms, {best.latency_ms['speedup_b32']:.2f}x "
                          f"float32 PyTorch eager) of {len(ok)} candidates passing parity and speed")


def runtimes_meta(cands: dict[str, Candidate], chosen: str) -> dict[str, dict[str, Any]]:
    """`runtimes` for danlu-model.json; a torch candidate that failed in bf16 is served in fp32."""
    out = {k: c.entry() for k, c in cands.items()}
    if chosen == "torch" and "torch" in cands and not cands["torch"].passed:
        out["torch"]["dtype"] = "float32"
        out["torch"]["reasons"].append("served in float32 (the reference) instead")
    return out


def text_meta(labels: list[str], max_length: int, runtime: str, runtimes: dict[str, Any],
              artifacts: dict[str, str], **extra: Any) -> dict[str, Any]:
    """danlu-model.json's text-specific content (docs/text.md: the contract with the server)."""
    return {
        "task": "classification", "runtime": runtime, "runtimes": runtimes, "artifacts": artifacts,
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(labels)]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}],
        "labels": list(labels),
        "text": {"max_length": max_length, "tokenizer": "tokenizer.json",
                 "model_inputs": ["input_ids", "attention_mask"]},
        "preprocessing": {"tokenize": {"max_length": max_length, "truncation": "right"},
                          "in_graph": False},
        **extra,
    }


def package_text(folder: Path, out: Path, texts: Sequence[str], y: np.ndarray | None,
                 labels: list[str], cfg: Any, max_length: int, only: Sequence[str] | None = None,
                 **extra: Any) -> dict[str, Any]:
    """Build, gate and choose the runtimes of the HF classifier `folder` into `out`; write
    danlu-model.json (README.md is the caller's). Returns the meta dict; with `y`, each
    runtime entry also records its test accuracy."""
    from danlu.export.package import write_package_meta

    cands, ref = build_candidates(folder, out, texts, cfg, max_length, only=only)
    runtime, why = choose_runtime(cands, cfg.runtime)
    runtimes = runtimes_meta(cands, runtime)
    if y is not None and len(y):
        for k, c in cands.items():
            runtimes[k]["test_accuracy"] = float((c.predictions[1] == y).mean())
    artifacts = {ARTIFACTS[k]: FILES[ARTIFACTS[k]] for k in cands}
    artifacts["tokenizer"] = "tokenizer.json"
    if "onnxruntime" not in cands:  # model.onnx may exist as the source of the int8 file only
        (out / FILES["onnx"]).unlink(missing_ok=True)
    if "torch" not in cands:
        shutil.rmtree(out / FILES["torch"], ignore_errors=True)
    reference = {"runtime": "torch", "dtype": "float32", "latency_ms": ref.latency_ms,
                 "threads": cfg.threads, "runs": cfg.latency_runs}
    if y is not None and len(y):
        reference["test_accuracy"] = float((ref.predictions[1] == y).mean())
    meta = text_meta(labels, max_length, runtime, runtimes, artifacts,
                     runtime_choice={"why": why, "override": cfg.runtime,
                                     "bf16_supported": bf16_supported(), "reference": reference},
                     **extra)
    write_package_meta(out, meta)
    return meta


def text_model_card(meta: dict[str, Any], source: str) -> str:
    """README.md of a text package: use, metrics, the runtimes and why the default was chosen."""
    from danlu.export.package import _interval

    test = meta.get("metrics", {}).get("test", {})
    ci = test.get("ci", {})
    rows = "\n".join(f"| {k} | {test[k]:.4f} | {_interval(ci.get(k))} |" for k in
                     ("accuracy", "balanced_accuracy", "f1_macro") if k in test)
    rt = "\n".join(
        f"| {k}{' (default)' if k == meta['runtime'] else ''} | {e['dtype']} | "
        f"{e['parity']['label_agreement']:.2%} | {e['parity']['max_abs_diff']:.2g} | "
        f"{e['latency_ms']['b1']:.1f} | {e['latency_ms']['b32']:.1f} | {e['size_bytes'] / 1e6:.1f} | "
        f"{'passed' if e['passed'] else 'rejected: ' + '; '.join(e['reasons'])} |"
        for k, e in meta["runtimes"].items())
    ref = meta["runtime_choice"]["reference"]
    t = meta["text"]
    return f"""# {meta.get('name', 'text model')} (version {meta.get('version', '1')})

A text classifier ({len(meta['labels'])} classes: {', '.join(meta['labels'])}) made by danlu from
`{source}`. Input: raw text (`text`, BYTES), tokenized with the package's `tokenizer.json` and
truncated to {t['max_length']} tokens (the response says which inputs were cut). Outputs:
`probabilities` (in the order of `labels`) and `label`.

```bash
danlu serve .                        # the default runtime: {meta['runtime']}
danlu serve . --runtime onnxruntime  # any runtime below
```

## Test metrics ({test.get('n', '?')} held-out texts)
| metric | value | 95% bootstrap interval |
|---|---|---|
{rows}

## Runtimes (measured at export here: {ref['threads']} threads, sequence {ref['latency_ms'].get('seq')})
Float32 PyTorch eager (the reference): {ref['latency_ms']['b1']:.1f} ms at batch 1,
{ref['latency_ms']['b32']:.1f} ms at batch 32. Parity is against it on every test text.

| runtime | dtype | labels agree | max prob diff | b1 ms | b32 ms | MB | gates |
|---|---|---|---|---|---|---|---|
{rt}

Default: {meta['runtime_choice']['why']}.

## Limits
Metrics come from one split of one seed; texts unlike the training corpus (other topics,
languages, lengths) are outside what they measure. Latencies depend on the CPU: rerun the
export on the serving machine (bf16 is fast only with AMX / AVX-512 BF16).
"""


def export_text(run: Any, cfg: Any) -> Any:
    """The export stage for `model.arch: transformer`: package/ from train/model/ (contract)."""
    from danlu.data.stage import load_splits
    from danlu.export.package import sha256
    from danlu.runs import StageResult, atomic_write, read_json

    splits = load_splits(run)
    spec = read_json(run.path("train", "model.json"))
    folder = run.path("train", spec.get("folder", "model"))
    metrics = read_json(run.path("eval", "metrics.json"))
    texts, y = [str(t) for t in splits.x["test"]], np.asarray(splits.y["test"])
    staging = run.path(".package.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    recipe = run.recipe
    provenance = {"recipe_sha256": recipe.section_hash(*recipe.to_dict()),
                  "model_sha256": sha256(folder / "model.safetensors"), "run": run.dir.name,
                  "versions": run.manifest["versions"], "pretrained": spec.get("pretrained"),
                  "layers": spec.get("layers"), "lora": spec.get("lora")}
    meta = package_text(folder, staging, texts, y, list(spec["labels"]), cfg,
                        int(spec["max_length"]), name=recipe.name, version=cfg.version,
                        metrics={"test": metrics["test"], "gate": metrics.get("gate")},
                        provenance=provenance)
    atomic_write(staging / "README.md", text_model_card(meta, splits.info.get("source", "")))
    pkg = run.path("package")
    shutil.rmtree(pkg, ignore_errors=True)
    staging.replace(pkg)  # the package appears whole or not at all
    chosen = meta["runtimes"][meta["runtime"]]
    return StageResult(paths={"package": "package"},
                       metrics={"runtime": meta["runtime"], "dtype": chosen["dtype"],
                                "b32_ms": chosen["latency_ms"]["b32"],
                                "speedup_b32": chosen["latency_ms"].get("speedup_b32"),
                                # the default runtime's parity, as the CLI prints for every package
                                "parity_max_abs_diff": chosen["parity"]["max_abs_diff"],
                                "parity_label_agreement": chosen["parity"]["label_agreement"],
                                "rejected": [k for k, e in meta["runtimes"].items() if not e["passed"]]})
