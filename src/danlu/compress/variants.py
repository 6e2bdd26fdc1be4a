"""Building one variant from its parent: distill -> prune -> quantize, each step recorded."""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.compress.config import QuantizeConfig, VariantConfig
from danlu.compress.distill import distill, student_config
from danlu.compress.finetune import FinetuneResult
from danlu.compress.gates import compare_to_baseline
from danlu.compress.measure import predict, session
from danlu.compress.prune import prune_structured, prune_unstructured, sparsity_report
from danlu.compress.quantize import quantize_onnx
from danlu.compress.quantize.qat import qat_finetune
from danlu.data.stage import Splits
from danlu.errors import RecipeError
from danlu.export.onnx import export_onnx
from danlu.export.parity import check_parity
from danlu.models import InputSpec, model_spec
from danlu.models.packaged import Packaged
from danlu.runs import atomic_write, write_json

__all__ = ["Built", "Context", "build_variant", "distillation_gain", "save_torch"]


@dataclass
class Context:
    """What every variant needs: the data, tensors for training, the run's normalizer."""

    splits: Splits
    spec: InputSpec
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    shift: torch.Tensor
    scale: torch.Tensor
    seed: int
    input_name: str
    opset: int
    parity_atol: float
    threads: int

    @property
    def num_classes(self) -> int:
        return self.splits.num_classes

    def packaged(self, net: nn.Module) -> Packaged:
        return Packaged(net, self.shift, self.scale).eval()

    def calibration(self, n: int) -> np.ndarray:
        """n rows (seeded) of the raw training split."""
        x = self.splits.x["train"]
        idx = np.random.default_rng(self.seed).choice(len(x), size=min(n, len(x)), replace=False)
        return x[np.sort(idx)]


@dataclass
class Built:
    """A model made by compress: its folder, its served ONNX, the torch net and config behind it."""

    name: str
    dir: Path
    net: nn.Module
    model_cfg: Any
    quantized: str | None = None
    steps: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    zipped: bool = False

    @property
    def onnx(self) -> Path:
        return self.dir / "model.onnx"


def save_torch(ctx: Context, b: Built) -> None:
    """model.safetensors + model.json (the layer widths as a model config): reloads without pickle."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in b.net.state_dict().items()}
    atomic_write(b.dir / "model.safetensors", save(state))  # save_file would make it 0600
    write_json(b.dir / "model.json", model_spec(b.model_cfg, ctx.spec, ctx.num_classes))


def export_torch(ctx: Context, b: Built) -> None:
    """model.onnx from the torch net (normalization inside), checked against torch on test rows."""
    module = ctx.packaged(b.net)
    export_onnx(module, ctx.spec.features, b.onnx, ctx.input_name, ctx.opset)
    b.parity = check_parity(module, b.onnx, ctx.splits.x["test"], ctx.input_name, ctx.parity_atol)
    save_torch(ctx, b)


def _history(r: FinetuneResult) -> dict[str, Any]:
    return {"epochs": len(r.history), "best_epoch": r.best_epoch, "steps": r.steps,
            "best_val_accuracy": r.best_val_accuracy, "history": r.history}


def _step_distill(ctx: Context, v: VariantConfig, b: Built, parent: Built) -> None:
    cfg = v.distill
    s_cfg = student_config(cfg, parent.model_cfg)
    aug = _augmenter(ctx, cfg.augment)
    student, res = distill(parent.net, s_cfg, ctx.spec, ctx.num_classes, cfg, ctx.train, ctx.val,
                           ctx.seed, augment=aug)
    aug = _augmenter(ctx, cfg.augment)  # a fresh one: the same draws for the comparison student
    plain, res0 = distill(parent.net, s_cfg, ctx.spec, ctx.num_classes, cfg, ctx.train, ctx.val,
                          ctx.seed, use_teacher=False, augment=aug)
    b.net, b.model_cfg = student, s_cfg
    x, y = ctx.splits.x["test"], ctx.splits.y["test"]
    with torch.inference_mode():
        p_kd, l_kd = ctx.packaged(student)(torch.from_numpy(x))
        p_0, l_0 = ctx.packaged(plain)(torch.from_numpy(x))
    out = b.dir / "undistilled"
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "predictions.npz", y=y, labels=l_0.numpy(), probabilities=p_0.numpy())
    acc_kd, acc_0 = float((l_kd.numpy() == y).mean()), float((l_0.numpy() == y).mean())
    b.record["distill"] = {
        "student": s_cfg.model_dump(mode="json"), "temperature": cfg.temperature, "alpha": cfg.alpha,
        "augment": [a.model_dump(mode="json", exclude_none=True) for a in cfg.augment],
        "teacher_logits_cached": not cfg.augment, "training": _history(res),
        "without_distillation": {"test_accuracy": acc_0, "training": _history(res0),
                                 "predictions": "undistilled/predictions.npz"},
        "test_accuracy": acc_kd, "gain_vs_undistilled": acc_kd - acc_0,
        "gain": distillation_gain(y, l_kd.numpy(), l_0.numpy()),
        "label_agreement_with_undistilled": float((l_kd.numpy() == l_0.numpy()).mean())}
    b.steps.append(f"distill (T={cfg.temperature}, alpha={cfg.alpha}"
                   + (", augmented" if cfg.augment else "") + ")")


def _augmenter(ctx: Context, steps: list[Any]):
    """distill.augment's steps as an Augmenter over this context's normalized tensors, or None."""
    if not steps:
        return None
    from danlu.data.augment import Augmenter

    x = ctx.splits.x["train"]
    return Augmenter(steps, ctx.shift, ctx.scale, ctx.num_classes, ctx.spec.image_shape,
                     (float(x.min()), float(x.max())), ctx.seed)


def distillation_gain(y: np.ndarray, distilled: np.ndarray, undistilled: np.ndarray) -> dict[str, Any]:
    """Test accuracy of the distilled student minus the same student trained without the teacher
    (same rows): paired bootstrap 95% interval and McNemar's test (danlu.evaluate.stats)."""
    c = compare_to_baseline(y, distilled, undistilled)
    return {"accuracy_gain": c["accuracy_diff"], "ci": c["ci"], "bootstrap_p": c["bootstrap_p"],
            "mcnemar_p": c["mcnemar_p"], "mcnemar": c["mcnemar"],
            "distilled_accuracy": float((distilled == y).mean()),
            "undistilled_accuracy": float((undistilled == y).mean()),
            # a gain is claimed only when the whole interval lies above zero
            "significant": c["ci"][0] > 0}


def _step_prune(ctx: Context, v: VariantConfig, b: Built) -> None:
    cfg = v.prune
    net = copy.deepcopy(b.net)
    if cfg.method == "magnitude":
        res = prune_unstructured(net, cfg, ctx.train, ctx.val, ctx.seed)
        b.record["prune"] = {"method": "magnitude", "scope": cfg.scope, "schedule": cfg.schedule,
                             "target_sparsity": cfg.sparsity, "finetune": _history(res),
                             "achieved": sparsity_report(net)}
        b.zipped = True
        b.steps.append(f"magnitude prune {cfg.sparsity:.0%} ({cfg.scope}, {cfg.schedule})")
    else:
        before = b.model_cfg.model_dump(mode="json")
        net, b.model_cfg, res = prune_structured(net, b.model_cfg, ctx.spec, ctx.num_classes, cfg,
                                                 ctx.train, ctx.val, ctx.seed)
        b.record["prune"] = {"method": "structured", "ratio": cfg.ratio, "widths_before": before,
                             "widths_after": b.model_cfg.model_dump(mode="json"),
                             "finetune": _history(res)}
        b.steps.append(f"structured prune {cfg.ratio:.0%} of channels")
    b.net = net


def _step_qat(ctx: Context, v: VariantConfig, b: Built) -> None:
    """Quantization-aware fine-tuning of a copy of the net; static QDQ export follows."""
    if b.net is None:
        raise RecipeError(f"compress.variants.{v.name}.quantize.mode", got="qat",
                          expected="a baseline with torch weights ('train' or a run folder)")
    b.net = copy.deepcopy(b.net)
    res = qat_finetune(b.net, v.quantize.qat, ctx.train, ctx.val, ctx.seed)
    b.record["qat"] = {**v.quantize.qat.model_dump(mode="json"), "finetune": _history(res),
                       "simulated": "int8 weights per channel (symmetric), Conv/Linear inputs per "
                                    "tensor; BatchNorm folded into Conv"}


def quantize_candidates(ctx: Context, src: Path, folder: Path, cfg: QuantizeConfig) -> dict[str, Path]:
    """{mode: quantized file} for cfg.mode (both dynamic and static for auto)."""
    # qat: the fine-tuned fp32 graph is quantized statically, as static PTQ would be.
    modes = {"auto": ["dynamic", "static"], "qat": ["static"]}.get(cfg.mode, [cfg.mode])
    calib = ctx.calibration(cfg.calibration_samples)
    return {m: quantize_onnx(src, folder / f"model.{m}.onnx", m, cfg, ctx.input_name, calib)
            for m in modes}


def quantized_parity(ctx: Context, ref: Path, q: Path) -> dict[str, Any]:
    """The quantized model against its fp32 ONNX parent on the test rows (information, not a gate)."""
    x = ctx.splits.x["test"]
    p_ref, l_ref = predict(session(ref, ctx.threads), x)
    p_q, l_q = predict(session(q, ctx.threads), x)
    return {"rows": len(x), "reference": "fp32 ONNX parent", "max_abs_diff": float(np.abs(p_ref - p_q).max()),
            "label_agreement": float((l_ref == l_q).mean())}


def build_variant(ctx: Context, v: VariantConfig, parent: Built, folder: Path,
                  pick_quantized=None) -> Built:
    """Make variant `v` from `parent` in `folder`: model.onnx and, for torch steps, safetensors.

    pick_quantized(candidates: {mode: path}, fp32: Path) -> (mode, record) decides `auto`."""
    if parent.quantized and (v.prune or v.distill or v.quantize):
        raise RecipeError(f"compress.variants.{v.name}.from", got=v.from_,
                          expected="a parent that is not quantized (quantize last)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    b = Built(v.name, folder, parent.net, parent.model_cfg)
    if v.distill:
        _step_distill(ctx, v, b, parent)
    if v.prune:
        _step_prune(ctx, v, b)
    if v.quantize and v.quantize.mode == "qat":
        _step_qat(ctx, v, b)
    if v.distill or v.prune or (v.quantize and v.quantize.mode == "qat"):
        export_torch(ctx, b)
    else:
        shutil.copy2(parent.onnx, b.onnx)
        b.parity = parent.parity
    if v.quantize:
        with tempfile.TemporaryDirectory() as d:
            fp32 = Path(d) / "model.fp32.onnx"
            b.onnx.replace(fp32)
            cands = quantize_candidates(ctx, fp32, Path(d), v.quantize)
            mode, record = (pick_quantized(cands, fp32) if len(cands) > 1
                            else (next(iter(cands)), {}))
            shutil.copy2(cands[mode], b.onnx)
            b.parity = quantized_parity(ctx, fp32, b.onnx)
        b.quantized = mode
        b.record["quantize"] = {**v.quantize.model_dump(mode="json"), "chosen_mode": mode, **record}
        qat = (f"quantization-aware training ({v.quantize.qat.epochs} epochs), then "
               if v.quantize.mode == "qat" else "")
        b.steps.append(qat + f"{mode} quantization" + (f" ({v.quantize.calibration} calibration)"
                                                       if mode == "static" else ""))
    return b
