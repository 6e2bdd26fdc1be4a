"""`danlu evaluate`: score a trained run (PyTorch) or a model package (ONNX Runtime) on new
labelled data, with the same metrics, intervals and warnings as the evaluate stage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.sources import Table, load_source
from danlu.errors import DanluError, DataError, RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.runs import Run, read_json, write_json

__all__ = ["ExternalResult", "evaluate_external"]


@dataclass
class ExternalResult:
    """The scored split, where it came from, and the file it was written to (if any)."""

    metrics: dict[str, Any]
    source: str
    model: str  # "run (PyTorch)" | "package (ONNX Runtime)"
    written: Path | None


def _source(data: str) -> str:
    """`csv:PATH`, `parquet:PATH`, or a bare path whose suffix says which."""
    if data.partition(":")[0] in ("csv", "parquet"):
        return data
    suffix = Path(data).suffix.lower()
    if suffix in (".csv", ".parquet"):
        return f"{suffix[1:]}:{data}"
    raise RecipeError("--data", got=data, expected="csv:PATH, parquet:PATH or a .csv/.parquet file")


def _align(table: Table, labels: list[str], feature_names: list[str] | None, source: str) -> Table:
    """Reorder columns to the model's features and relabel rows to the model's label order."""
    if feature_names and set(table.feature_names) == set(feature_names):
        order = [table.feature_names.index(f) for f in feature_names]
        table.x, table.feature_names = table.x[:, order], list(feature_names)
    unknown = [lab for lab in table.label_names if lab not in labels]
    if unknown:
        raise DataError(f"labels {unknown} are not classes of this model (its classes: "
                        f"{', '.join(labels)})", source=source)
    table.y = np.array([labels.index(lab) for lab in table.label_names], np.int64)[table.y]
    table.label_names = list(labels)
    return table


def _check_width(x: np.ndarray, features: int, source: str) -> None:
    if x.shape[1] != features:
        raise DataError(f"{x.shape[1]} feature columns, but the model takes {features}; "
                        "give the same columns it was trained on", source=source)


def evaluate_external(path: str | Path, data: str | None = None, target: str | None = None,
                      out: str | Path | None = None) -> ExternalResult:
    """Score the run or package at `path` on `data` (default: the run's own test split).

    A run is scored with its PyTorch weights and writes eval/external-<data name>.json (the
    test metrics in eval/metrics.json are left alone); a package folder is scored with ONNX
    Runtime and writes only to `out`, or to its run's eval/ when it sits in a run folder."""
    from danlu.evaluate.stage import score

    path = Path(path)
    run_dir = path if (path / "manifest.json").is_file() else (
        path.parent if (path / "danlu-model.json").is_file()
        and (path.parent / "manifest.json").is_file() else None)
    run = Run.open(run_dir) if run_dir is not None else None
    cfg = run.recipe.evaluate if run else EvaluateConfig()
    seed = run.recipe.seed if run else 0
    is_package = (path / "danlu-model.json").is_file()
    if not is_package and run is None:
        raise DanluError(f"{path}: neither a run folder (manifest.json) nor a model package "
                         "(danlu-model.json)")

    if data is None:
        if run is None:
            raise RecipeError("--data", got=None, expected="labelled data for a package, e.g. "
                              "--data csv:new.csv --target label")
        from danlu.data.stage import load_splits

        splits = load_splits(run)
        x, y, labels, source = splits.x["test"], splits.y["test"], splits.info["labels"], "test split"
    else:
        source = _source(data)
        target = target or (run.recipe.data.target if run else None)
        if not target:
            raise RecipeError("--target", got=None, expected="the label column of the new data, "
                              "e.g. --target label")
        info = read_json(run.path("data", "info.json")) if run else None
        table = load_source(source, target)
        labels = info["labels"] if info else _package_labels(path)
        # A run knows its feature names, so columns are matched by name; a package on its own
        # (danlu-model.json has no names yet) takes the file's columns in order.
        names = info["feature_names"] if info else _package_meta(path).get("feature_names")
        table = _align(table, labels, names, source)
        x, y = table.x, table.y

    if is_package:
        probs, model = _package_probs(path, x, source), "package (ONNX Runtime)"
    else:
        probs, model = _run_probs(run, x, source), "run (PyTorch)"
    metrics = score(probs, y, labels, cfg, seed)
    doc = {"source": source, "model": model, "path": str(path), **metrics}
    written = None
    if out is not None:
        written = write_json(Path(out), doc)
    elif run is not None and data is not None:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source.partition(":")[2]).stem) or "data"
        written = write_json(run.stage_dir("eval") / f"external-{name}.json", doc)
    return ExternalResult(metrics, source, model, written)


def _package_meta(path: Path) -> dict[str, Any]:
    from danlu.serve.package import load_package

    return load_package(path).meta


def _package_labels(path: Path) -> list[str]:
    from danlu.serve.package import load_package

    labels = load_package(path).labels
    if not labels:
        raise DanluError(f"{path}: danlu-model.json has no labels; cannot score classification")
    return list(labels)


def _package_probs(path: Path, x: np.ndarray, source: str) -> np.ndarray:
    from danlu.serve.package import load_package
    from danlu.serve.runtimes.onnx import OnnxRuntime

    pkg = load_package(path)
    spec = pkg.inputs[0]
    _check_width(x, spec.shape[-1], source)
    rt = OnnxRuntime(pkg)
    parts = [rt.run({spec.name: x[i:i + 1024].astype(np.float32)}, ["probabilities"])["probabilities"]
             for i in range(0, len(x), 1024)]
    return np.concatenate(parts).astype(np.float64)


def _run_probs(run: Run, x: np.ndarray, source: str) -> np.ndarray:
    import torch

    from danlu.train.checkpoint import load_packaged

    model = load_packaged(run)
    _check_width(x, int(model.shift.numel()), source)
    with torch.inference_mode():
        probs, _ = model(torch.from_numpy(x.astype(np.float32)))
    return probs.double().numpy()
