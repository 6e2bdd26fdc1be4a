"""A variant: built from its parent by distill -> prune -> quantize, as a servable package.

Torch steps (distill, prune, QAT) end in a MODEL FOLDER (danlu.models.load), packaged by
`danlu.export.package.build_package` like the export stage's model (its family's runtimes, gated
and chosen by measurement). A quantized variant is a package whose artifact is the quantized
ONNX graph of its parent (or of its own fine-tuned model), with the parent's features and head.
What a family can take is checked before anything is built (`check_variants`)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from danlu.compress.config import QuantizeConfig, VariantConfig
from danlu.compress.context import Context
from danlu.compress.steps import distill_step, prune_step, qat_step
from danlu.errors import RecipeError
from danlu.models.load import Loaded

__all__ = ["Variant", "build_variant", "check_variants", "needs_torch"]


@dataclass
class Variant:
    """A model compress made (or the baseline): its package folder and the model behind it."""

    name: str
    dir: Path
    family: Any  # the model family (danlu.models Family) of the network behind the package
    # The torch model behind the package: this variant's own model folder, its parent's for a
    # quantized graph (parameters are counted there); None for a package baseline's graphs.
    model: Loaded | None
    parent: str | None = None
    quantized: str | None = None  # the mode of its quantized graph
    steps: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # its danlu-model.json
    zipped: bool = False  # ships <artifact>.zip (sparse weights compress)

    @property
    def runtime(self) -> str:
        return self.meta["runtime"]

    @property
    def dtype(self) -> str:
        return self.meta.get("runtimes", {}).get(self.runtime, {}).get("dtype", "float32")


def needs_torch(variants: list[VariantConfig]) -> list[str]:
    """Variants whose steps need the baseline's torch weights: distillation trains on the
    teacher's logits, pruning and QAT fine-tune the weights (directly or via a `from:` chain)."""
    names: list[str] = []
    for v in variants:
        if v.distill or v.prune or (v.quantize and v.quantize.mode == "qat") or v.from_ in names:
            names.append(v.name)
    return names


def check_variants(base: Variant, variants: list[VariantConfig]) -> None:
    """Reject, before any work, a step the model's family does not take (RecipeError naming
    compress.variants[i]... and the fix) or a parent that is already quantized."""
    fam, model = base.family, base.model
    torch_steps = needs_torch(variants)
    if model is None and torch_steps:
        raise RecipeError(
            "compress.baseline", got=base.record["source"]["path"],
            expected=f"a run folder (or 'train') for the variants {', '.join(torch_steps)}",
            hint="a package holds only model.onnx, no torch weights: distillation needs the "
                 "teacher's network to compute its logits, pruning and QAT fine-tune the weights; "
                 "quantization variants work from a package. Set compress.baseline to the run "
                 "folder that made the package, or keep only quantize variants")
    quantized = {v.name for v in variants if v.quantize}
    for i, v in enumerate(variants):
        where = f"compress.variants[{i}]"
        if v.from_ in quantized:
            raise RecipeError(f"{where}.from", got=v.from_,
                              expected="a parent that is not quantized (quantize last)")
        if v.quantize and v.quantize.mode not in fam.quantize_modes:
            raise RecipeError(f"{where}.quantize.mode", got=v.quantize.mode,
                              expected=f"one of {', '.join(fam.quantize_modes)} (the quantize "
                                       f"modes of the {fam.name} family)")
        if v.prune and model is not None:
            if not takes_pruning(fam, model, v.prune):
                raise RecipeError(f"{where}.prune", got=v.prune.model_dump(mode="json"),
                                  expected=f"a step the {fam.name} family takes: it takes no "
                                           f"{v.prune.method} pruning", hint=fam.compress_hint)
        if v.distill and v.from_ == "baseline" and model is not None:
            fam.student(model, v.distill, f"{where}.distill")  # its errors name the path


def takes_pruning(fam: Any, model: Any, prune: Any) -> bool:
    """Whether `model` (a loaded model folder) takes the pruning `prune` asks (its family's
    `prunable` for magnitude pruning, `widths` for structured)."""
    return (fam.prunable(model.net) if prune.method == "magnitude"
            else fam.widths(model.net, model.cfg)) is not None


def build_variant(ctx: Context, v: VariantConfig, parent: Variant, folder: Path,
                  where: str) -> Variant:
    """Make variant `v` from `parent` in `folder` (emptied first): model/ for torch steps, then
    its package."""
    from danlu.compress.package import package_model
    from danlu.models.load import load_model, save_model

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    b = Variant(v.name, folder, parent.family, parent.model, parent=v.from_)
    model = parent.model
    qat = v.quantize is not None and v.quantize.mode == "qat"
    if v.distill:
        model = distill_step(ctx, b, model, v.distill, f"{where}.distill")
    if v.prune:
        model = prune_step(ctx, b, model, v.prune)
    if qat:
        model = qat_step(ctx, b, model, v.quantize.qat)
    if model is not parent.model:  # torch steps: this variant's own model folder
        save_model(folder / "model", model.cfg, model.net, model.features, model.head)
        b.model = load_model(folder / "model")  # what serving loads: config + safetensors
        b.family = b.model.family
    if v.quantize:
        quantize_variant(ctx, b, parent, v.quantize)
    else:
        b.meta = package_model(ctx, b)
    return b


def _fp32_graph(ctx: Context, b: Variant, parent: Variant, folder: Path) -> Path:
    """The float32 ONNX graph to quantize: the parent package's, or, after torch steps (or for
    a parent served without one), a fresh export of the model."""
    from danlu.serve.package import load_package

    own = b.model is not parent.model
    if not own and "onnx" in parent.meta.get("artifacts", {}):
        return load_package(parent.dir).artifact("onnx")
    from danlu.export.onnx import export_onnx

    return export_onnx(b.model.packaged(), folder / "model.fp32.onnx", ctx.export.opset)


def quantize_variant(ctx: Context, b: Variant, parent: Variant, cfg: QuantizeConfig) -> None:
    """b.dir becomes a package of the quantized graph (ONNX Runtime, with the family's
    pre-processing options); `auto` measures the family's int8 modes against the float32 graph
    and keeps the fastest within the metric budget."""
    from danlu.compress.package import quantized_package
    from danlu.compress.quantize import quantize_onnx

    modes = {"auto": [m for m in ("dynamic", "static") if m in b.family.quantize_modes],
             "qat": ["static"]}.get(cfg.mode, [cfg.mode])  # qat: its fine-tuned graph, static
    with tempfile.TemporaryDirectory(prefix="danlu-quant-") as d:
        fp32 = _fp32_graph(ctx, b, parent, Path(d))
        calib = ctx.calibration(cfg.calibration_samples) if "static" in modes else None
        cands = {m: quantize_onnx(fp32, Path(d) / f"model.{m}.onnx", m, cfg,
                                  calib if m == "static" else None, **b.family.quantize_preprocess)
                 for m in modes}
        mode, record = next(iter(cands)), {}
        if len(cands) > 1:
            mode, record = _pick(ctx, b, fp32, cands, Path(d))
        b.meta = quantized_package(ctx, b.dir, cands[mode], mode, b.name)
    b.quantized = mode
    b.record["quantize"] = {**cfg.model_dump(mode="json"), "candidates": modes,
                            "chosen_mode": mode, **record}
    qat = (f"quantization-aware training ({cfg.qat.epochs} epochs), then "
           if cfg.mode == "qat" else "")
    b.steps.append(qat + f"{mode} quantization"
                   + (f" ({cfg.calibration} calibration)" if mode == "static" else ""))


def _pick(ctx: Context, b: Variant, fp32: Path, cands: dict[str, Path],
          tmp: Path) -> tuple[str, dict[str, Any]]:
    """`quantize: {mode: auto}`: every candidate and the float32 graph packaged and measured
    together (as every variant is); the fastest whose metric passes the gate wins (static
    wins ties: it is the smaller file on convolutions)."""
    from danlu.compress.gates import metric_gate
    from danlu.compress.measure import measure, serve_predict
    from danlu.compress.package import quantized_package

    pkgs = {}
    for mode, path in {"float32": fp32, **cands}.items():
        p = dataclasses.replace(b, name=mode, dir=tmp / f"pkg-{mode}", quantized=mode)
        p.meta = quantized_package(ctx, p.dir, path, mode, b.name)
        pkgs[mode] = p
    m = measure(ctx, pkgs)
    if ctx.baseline_outputs is None:
        ctx.baseline_outputs = serve_predict(ctx, ctx.baseline, "test")
    y, metric = ctx.y("test"), ctx.metric
    rows = {}
    for mode in cands:
        gate = metric_gate(ctx.head, y, m[mode].outputs, m["float32"].outputs,
                           ctx.baseline_outputs, metric, ctx.max_drop, ctx.cfg.budget)
        rows[mode] = {"b32_ms": m[mode].latency["b32_ms"],
                      "fp32_b32_ms": m["float32"].latency["b32_ms"],
                      metric: gate[metric], "metric_ok": gate["passed"]}
    ok = [k for k in rows if rows[k]["metric_ok"]] or list(rows)
    return min(ok, key=lambda k: (rows[k]["b32_ms"], k != "static")), {"auto": rows}
