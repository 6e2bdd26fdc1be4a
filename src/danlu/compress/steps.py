"""The torch steps of a variant, on a loaded model (danlu.models.load.Loaded): distill, prune,
quantization-aware training. Each returns the changed model and records what it did; what
differs by model family (the student, what may be pruned, the widths after pruning) is asked of
the family."""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from danlu.compress.config import DistillConfig, PruneConfig, QATConfig
from danlu.compress.context import Context
from danlu.compress.finetune import history
from danlu.compress.measure import named_outputs
from danlu.errors import RecipeError
from danlu.models.load import Loaded

if TYPE_CHECKING:
    from danlu.compress.variants import Variant

__all__ = ["distill_step", "prune_step", "qat_step"]


def _augmenter(ctx: Context, cfg: DistillConfig, where: str) -> Any:
    """distill.augment as the training loop's augmenter over the baseline's features, or None."""
    if not cfg.augment:
        return None
    from danlu.data.augment import build_augmenter

    try:
        return build_augmenter(cfg.augment, ctx.features, ctx.head, ctx.seed)
    except RecipeError as e:  # its paths name preprocess.augment: here the steps are distill's
        raise RecipeError(e.path.replace("preprocess.augment", f"{where}.augment"), got=e.got,
                          expected=e.expected, hint=e.hint) from None


def _outputs(ctx: Context, model: Loaded, net: torch.nn.Module) -> tuple[np.ndarray, ...]:
    """The package outputs of `net` on the test split, behind the model's features and head,
    in float32 torch: the two students are compared as trained, whatever runtime serves them."""
    from danlu.models.packaged import Packaged, predict

    return tuple(predict(Packaged(model.features, net, model.head), ctx.values("test")))


def distill_step(ctx: Context, b: Variant, model: Loaded, cfg: DistillConfig,
                 where: str) -> Loaded:
    """The family's student of `model`, trained on its logits; the same student (same seed,
    epochs, batches) trained on the labels alone gives the distillation gain (its test labels
    in b.dir/undistilled/predictions.npz)."""
    from danlu.compress.distill import distill, distillation_gain
    from danlu.models import family

    train, val = ctx.xy("train"), ctx.xy("val")
    torch.manual_seed(ctx.seed)
    s_cfg, student = model.family.student(model, cfg, where)
    res = distill(model.net, student, cfg, train, val, model.head, ctx.seed,
                  augment=_augmenter(ctx, cfg, where))
    torch.manual_seed(ctx.seed)
    _, alone = model.family.student(model, cfg, where)
    res0 = distill(model.net, alone, cfg, train, val, model.head, ctx.seed, use_teacher=False,
                   augment=_augmenter(ctx, cfg, where))  # a fresh one: the same draws
    y, head, metric = ctx.y("test"), model.head, model.head.main_metric
    kd, alone_out = _outputs(ctx, model, student), _outputs(ctx, model, alone)
    out = b.dir / "undistilled"
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "predictions.npz", **named_outputs(head, alone_out), y=y)
    score_kd = float(head.scores(kd[0], y)[metric])
    score_0 = float(head.scores(alone_out[0], y)[metric])
    sign = -1.0 if head.lower_is_better(metric) else 1.0
    b.record["distill"] = {
        "student": s_cfg.model_dump(mode="json"), "temperature": cfg.temperature, "alpha": cfg.alpha,
        "augment": [a.model_dump(mode="json", exclude_none=True) for a in cfg.augment],
        "teacher_logits_cached": not cfg.augment, "training": history(res),
        "without_distillation": {f"test_{metric}": score_0, "training": history(res0),
                                 "predictions": "undistilled/predictions.npz"},
        f"test_{metric}": score_kd, "gain_vs_undistilled": sign * (score_kd - score_0),
        "gain": distillation_gain(head, y, kd[0], alone_out[0])}
    agree = head.agreement(alone_out, kd)
    if agree is not None:
        b.record["distill"]["label_agreement_with_undistilled"] = agree
    b.steps.append(f"distill to {_describe(s_cfg)} (T={cfg.temperature}, alpha={cfg.alpha}"
                   + (", augmented" if cfg.augment else "") + ")")
    return dataclasses.replace(model, family=family(s_cfg), cfg=s_cfg, net=student.eval())


def _describe(cfg: Any) -> str:
    """A model config in a few words: its arch and the fields that set its size."""
    sizes = {k: v for k, v in cfg.model_dump(mode="json").items()
             if k in ("hidden", "channels", "layers") and v is not None}
    return f"{cfg.arch} " + ", ".join(f"{k} {v}" for k, v in sizes.items())


def prune_step(ctx: Context, b: Variant, model: Loaded, cfg: PruneConfig) -> Loaded:
    """Magnitude (exact zeros in what the family calls prunable) or structured pruning (the
    family rebuilds the smaller network from its widths), with fine-tuning."""
    from danlu.compress.prune import prune_structured, prune_unstructured, sparsity_report

    train, val = ctx.xy("train"), ctx.xy("val")
    if cfg.method == "magnitude":
        net = copy.deepcopy(model.net)
        params = model.family.prunable(net)
        res = prune_unstructured(net, params, cfg, train, val, model.head, ctx.seed)
        b.record["prune"] = {"method": "magnitude", "scope": cfg.scope, "schedule": cfg.schedule,
                             "target_sparsity": cfg.sparsity, "finetune": history(res),
                             "achieved": sparsity_report(net, params)}
        b.zipped = True  # the zeros show on disk only once compressed: ship the zip too
        b.steps.append(f"magnitude prune {cfg.sparsity:.0%} ({cfg.scope}, {cfg.schedule})")
        return dataclasses.replace(model, net=net)
    net, new_cfg, res = prune_structured(model, cfg, train, val, ctx.seed)
    b.record["prune"] = {"method": "structured", "ratio": cfg.ratio,
                         "widths_before": model.cfg.model_dump(mode="json"),
                         "widths_after": new_cfg.model_dump(mode="json"), "finetune": history(res)}
    b.steps.append(f"structured prune {cfg.ratio:.0%} of channels")
    return dataclasses.replace(model, cfg=new_cfg, net=net)


def qat_step(ctx: Context, b: Variant, model: Loaded, cfg: QATConfig) -> Loaded:
    """Quantization-aware fine-tuning of a copy of the network (static int8 QDQ follows)."""
    from danlu.compress.quantize.qat import qat_finetune

    net = copy.deepcopy(model.net)
    res = qat_finetune(net, cfg, ctx.xy("train"), ctx.xy("val"), model.head, ctx.seed)
    b.record["qat"] = {**cfg.model_dump(mode="json"), "finetune": history(res),
                       "simulated": "int8 weights per channel (symmetric), Conv/Linear inputs "
                                    "per tensor; BatchNorm folded into Conv"}
    return dataclasses.replace(model, net=net)
