"""The model compress starts from (`compress.baseline`): this run's trained model, another run's,
or a model package (ONNX only: quantization works from it; distillation and pruning need torch)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import torch

from danlu.compress.config import CompressConfig
from danlu.compress.variants import Built, Context, export_torch
from danlu.errors import RecipeError
from danlu.runs import Run, read_json
from danlu.train.checkpoint import load_model

__all__ = ["load_baseline", "needs_torch"]

EXPECTED = ("'train' (this run's model), a run folder (with train/model.safetensors) or a model "
            "package folder (with danlu-model.json and model.onnx)")


def needs_torch(cfg: CompressConfig, variants: list[Any]) -> list[str]:
    """Variants whose steps need the baseline's torch weights: distillation trains on the
    teacher's logits, pruning fine-tunes the weights (directly, or through a `from:` chain)."""
    names: list[str] = []
    for v in variants:
        if v.distill or v.prune or (v.quantize and v.quantize.mode == "qat") or v.from_ in names:
            names.append(v.name)
    return names


def _check_same_task(run: Run, labels: list[str], features: int, where: str) -> None:
    info = read_json(run.path("data", "info.json"))
    if list(labels) != list(info["labels"]) or int(features) != int(info["features"]):
        raise RecipeError("compress.baseline", got=where,
                          expected=f"a model of this run's task ({len(info['labels'])} classes "
                                   f"{info['labels'][:5]}..., {info['features']} features)",
                          hint=f"it has {len(labels)} classes {list(labels)[:5]}..., {features} "
                               "features; compress a model of the same data")


def _from_run(run: Run, ctx: Context, path: Path, folder: Path) -> tuple[Built, Context]:
    from danlu.data.normalize import Normalizer

    other = Run.open(path)
    spec = read_json(other.path("train", "model.json"))
    _check_same_task(run, read_json(other.path("data", "info.json"))["labels"], spec["features"],
                     str(path))
    # The other run's network expects inputs scaled by its own normalizer: every torch step
    # (teacher logits, fine-tuning, students) and every exported graph uses that one.
    state = read_json(other.path("data", "normalizer.json"))
    norm = Normalizer().load_state_dict(state)
    x = ctx.splits.x

    def t(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(norm.transform(x[split])), torch.from_numpy(ctx.splits.y[split])

    ctx = dataclasses.replace(ctx, train=t("train"), val=t("val"),
                              shift=torch.tensor(state["shift"]), scale=torch.tensor(state["scale"]))
    base = Built("baseline", folder, load_model(other), other.recipe.model)
    base.record["source"] = {"kind": "run", "path": str(path)}
    export_torch(ctx, base)
    return base, ctx


def _from_package(run: Run, cfg: CompressConfig, variants: list[Any], path: Path,
                  folder: Path) -> Built:
    meta = read_json(path / "danlu-model.json")
    onnx = path / meta.get("artifacts", {}).get("onnx", "model.onnx")
    if not onnx.is_file():
        raise RecipeError("compress.baseline", got=str(path), expected=EXPECTED,
                          hint=f"{onnx} is missing")
    shape = meta["inputs"][0]["shape"]
    _check_same_task(run, meta["labels"], shape[-1], str(path))
    torch_steps = needs_torch(cfg, variants)
    if torch_steps:
        raise RecipeError(
            "compress.baseline", got=str(path),
            expected=f"a run folder (or 'train') for the variants {', '.join(torch_steps)}",
            hint="a package holds only model.onnx, no torch weights: distillation needs the "
                 "teacher's network to compute its logits, pruning and QAT fine-tune the weights; "
                 "quantization variants work from a package. Set compress.baseline to the run "
                 "folder that made the package, or keep only quantize variants")
    shutil.copy2(onnx, folder / "model.onnx")
    base = Built("baseline", folder, None, None)
    base.parity = meta.get("parity", {})
    base.record["source"] = {"kind": "package", "path": str(path), "name": meta.get("name"),
                             "version": meta.get("version")}
    return base


def load_baseline(run: Run, cfg: CompressConfig, ctx: Context, variants: list[Any],
                  folder: Path) -> tuple[Built, Context]:
    """compress/baseline/ (model.onnx, and the torch net when there is one) and the context the
    variants are built in (a baseline from another run brings its normalizer)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if cfg.baseline == "train":
        base = Built("baseline", folder, load_model(run), run.recipe.model)
        base.record["source"] = {"kind": "train", "path": str(run.dir)}
        export_torch(ctx, base)
        return base, ctx
    path = Path(cfg.baseline).expanduser()
    if (path / "train" / "model.safetensors").is_file() and (path / "manifest.json").is_file():
        return _from_run(run, ctx, path, folder)
    if (path / "danlu-model.json").is_file():
        return _from_package(run, cfg, variants, path, folder), ctx
    raise RecipeError("compress.baseline", got=cfg.baseline, expected=EXPECTED,
                      hint="no such folder" if not path.exists() else "neither a run nor a package")
