"""The model compress starts from (`compress.baseline`): this run's trained model folder, another
run's (with its own fitted features: its normalizer travels with it), or a model package (ONNX
only: quantization works from it; distillation, pruning and QAT need torch weights)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from danlu.compress.config import CompressConfig
from danlu.compress.variants import Variant
from danlu.data.stage import Splits
from danlu.errors import RecipeError
from danlu.runs import Run

__all__ = ["load_baseline"]

EXPECTED = ("'train' (this run's model), a run folder (with train/model/) or a model package "
            "folder (with danlu-model.json and model.onnx)")


def _task(features: list[dict[str, Any]], labels: list[str]) -> tuple:
    return [(f["name"], f["type"], list(f.get("columns", []))) for f in features], list(labels)


def _check_same_task(splits: Splits, features: list[dict[str, Any]], labels: list[str],
                     where: str) -> None:
    """The baseline must take this run's features and predict its labels."""
    want = _task(splits.described, splits.labels)
    got = _task(features, labels)
    if got != want:
        def say(t: tuple) -> str:
            return (f"features {[f[0] + ':' + f[1] for f in t[0]]}, {len(t[1])} classes "
                    f"{t[1][:5]}")

        raise RecipeError("compress.baseline", got=where,
                          expected=f"a model of this run's task ({say(want)})",
                          hint=f"it has {say(got)}; compress a model of the same data")


def _from_model(folder: Path, model_folder: Path, source: dict[str, Any], splits: Splits,
                where: str) -> Variant:
    from danlu.models.load import load_model

    model = load_model(model_folder)
    _check_same_task(splits, [f.describe() for f in model.features], model.head.labels, where)
    b = Variant("baseline", folder, model.family, model)
    b.record["source"] = source
    return b


def _from_package(run: Run, splits: Splits, path: Path, folder: Path) -> Variant:
    from danlu.models import family
    from danlu.package import read_meta

    meta = read_meta(path)
    if "onnx" not in meta.artifacts or not (path / meta.artifacts["onnx"]).is_file():
        raise RecipeError("compress.baseline", got=str(path), expected=EXPECTED,
                          hint=f"{path} has no ONNX graph (artifacts.onnx) to quantize")
    _check_same_task(splits, [f.model_dump() for f in meta.features], meta.labels or [], str(path))
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(path, folder)
    # The package is this run's kind of model (same features and labels): its family decides
    # how the graph may be quantized.
    b = Variant("baseline", folder, family(run.recipe.model), None, meta=read_meta(folder).dump())
    b.record["source"] = {"kind": "package", "path": str(path), "name": meta.name,
                          "version": meta.version}
    return b


def load_baseline(run: Run, cfg: CompressConfig, splits: Splits, folder: Path) -> Variant:
    """The baseline variant (its package still to build when it has a torch model); `folder`
    is emptied for it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if cfg.baseline == "train":
        return _from_model(folder, run.path("train", "model"),
                           {"kind": "train", "path": str(run.dir)}, splits, "train")
    path = Path(cfg.baseline).expanduser()
    if (path / "train" / "model" / "model.json").is_file() and (path / "manifest.json").is_file():
        return _from_model(folder, path / "train" / "model", {"kind": "run", "path": str(path)},
                           splits, str(path))
    if (path / "danlu-model.json").is_file():
        return _from_package(run, splits, path, folder)
    raise RecipeError("compress.baseline", got=cfg.baseline, expected=EXPECTED,
                      hint="no such folder" if not path.exists() else "neither a run nor a package")
