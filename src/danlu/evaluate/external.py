"""`danlu evaluate`: score a trained run (PyTorch) or a model package (its runtime) on new
labelled data, with the same metrics, intervals and warnings as the evaluate stage.

New data is read by the data stage's readers (any scheme of data.source) and cleaned by its
rules (`preprocess.clean` of the run, the defaults for a package alone): invalid rows are
dropped and counted, as in data/cleaning.json."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.clean import CleaningReport, check_chunk
from danlu.data.config import CleanConfig
from danlu.data.readers import Reader, label_name, open_reader, schemes
from danlu.errors import DanluError, DataError, RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.runs import Run, read_json, write_json

__all__ = ["ExternalResult", "evaluate_external"]

# A bare path's suffix -> its scheme of data.source.
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}
# danlu-model.json `runtime` -> how the result names the engine that scored.
ENGINES = {"onnxruntime": "ONNX Runtime", "onnxruntime-int8": "ONNX Runtime int8",
           "torch": "PyTorch"}


@dataclass
class ExternalResult:
    """The scored split, where it came from, and the file it was written to (if any)."""

    metrics: dict[str, Any]
    source: str
    model: str  # "run (PyTorch)" | "package (ONNX Runtime)" | ...
    written: Path | None
    cleaning: dict[str, Any] | None = None  # rows in/out and removals by reason (--data only)


@dataclass
class _Model:
    """What reading new data for a model needs: its classes, its columns, what it takes."""

    labels: list[str]
    feature_names: list[str] | None  # None: an older package; the file's columns in order
    text: bool
    image_shape: list[int] | None


def _source(data: str) -> str:
    """`SCHEME:REST` for any scheme of data.source, or a bare path whose suffix says which."""
    scheme, sep, _ = data.partition(":")
    if sep and not Path(data).exists():
        try:
            schemes[scheme]
        except RecipeError as e:  # names the schemes and the closest one
            raise RecipeError("--data", got=data, expected=e.expected, hint=e.hint) from None
        return data
    scheme = SUFFIXES.get(Path(data).suffix.lower())
    if scheme:
        return f"{scheme}:{data}"
    raise RecipeError("--data", got=data, expected=f"SCHEME:PATH with a scheme of data.source "
                      f"({', '.join(schemes.names())}) or a .csv/.parquet/.jsonl file")


def _open(source: str, target: str | None, model: _Model, drop: list[str]) -> Reader:
    """open_reader, with its recipe keys named as the options of `danlu evaluate`."""
    text_field = (model.feature_names or ["text"])[0] if model.text else None
    try:
        return open_reader(source, target, text_field, drop=drop)
    except RecipeError as e:
        if e.path == "data.target":
            raise RecipeError("--target", got=target, expected=e.expected if target else
                              "the label column of the new data, e.g. --target label") from None
        if e.path == "data.source":
            raise RecipeError("--data", got=e.got, expected=e.expected, hint=e.hint) from None
        raise


def _reader(source: str, target: str | None, model: _Model) -> Reader:
    """The reader of `source`; a table's columns that the model does not take are left out."""
    reader = _open(source, target, model, [])
    if model.text != (reader.kind == "text"):
        raise DataError(f"a {reader.kind} source, but the model takes "
                        f"{'text' if model.text else 'numbers'}", source=source)
    if reader.kind == "image" and model.image_shape and reader.image_shape != model.image_shape:
        raise DataError(f"images of shape {reader.image_shape}, but the model takes "
                        f"{model.image_shape}", source=source)
    names = model.feature_names
    if reader.kind != "table" or not names or not set(names) <= set(reader.feature_names):
        return reader  # missing columns are named after the labels are checked (_columns)
    extra = [f for f in reader.feature_names if f not in names]
    return _open(source, target, model, extra) if extra else reader


def _columns(reader: Reader, x: np.ndarray, names: list[str], source: str) -> np.ndarray:
    """`x`'s columns in the model's order, matched by name."""
    missing = [f for f in names if f not in reader.feature_names]
    if missing:
        raise DataError(f"no column {', '.join(map(repr, missing[:5]))}"
                        f"{f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''}; the "
                        f"model's features are matched to columns by name", source=source)
    return x[:, [reader.feature_names.index(f) for f in names]]


def _wrong_lengths(reader: Reader, seen: int, policy: str, report: CleaningReport, source: str,
                   before: int | None = None) -> int:
    """Count csv lines with the wrong number of cells met since `seen`; with `fail`, stop at
    the first (when `before` is given, only if it comes before that row)."""
    new = getattr(reader, "bad_lines", [])[seen:]
    if new and before is not None and new[0][0] > before:
        return seen
    if new and policy == "fail":
        raise DataError(f"wrong number of columns ({new[0][1][:80]!r}); preprocess.clean.invalid "
                        "is 'fail' (use 'drop' to remove and count such rows)", row=new[0][0],
                        source=source)
    report.add("wrong_column_count", np.array([r for r, _ in new], np.int64))
    report.rows_in += len(new)
    return seen + len(new)


def _read(source: str, target: str | None, model: _Model,
          clean: CleanConfig) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(features float32 in the model's column order, or texts; label indices into
    model.labels; cleaning counts) of `source`'s valid rows, by the data stage's rules."""
    reader = _reader(source, target, model)
    report, xs, ys, seen = CleaningReport(), [], [], 0
    for chunk in reader.chunks():
        report.rows_in += len(chunk)
        try:
            valid = check_chunk(chunk, reader, clean, report, source)
        except DataError as e:  # `fail`: a wrong-length line before this row fails first
            _wrong_lengths(reader, seen, clean.invalid, report, source, before=e.row)
            raise
        seen = _wrong_lengths(reader, seen, clean.invalid, report, source)
        xs.append(chunk.text[valid] if chunk.x is None else chunk.x[valid].astype(np.float32))
        ys.append(chunk.labels[valid])
    y = np.concatenate(ys) if ys else np.empty(0, np.int64)
    cleaning = report.to_dict(rows_out=len(y))
    if not len(y):
        raise DataError(f"no valid rows to score: {cleaning['rows_in']} read, removed by reason "
                        f"{cleaning['removed']}", source=source)
    y = _model_labels(reader, y, model.labels, source)
    x = np.concatenate(xs)
    if model.feature_names and reader.kind == "table":
        x = _columns(reader, x, model.feature_names, source)
    return x, y, cleaning


def _model_labels(reader: Reader, y: np.ndarray, labels: list[str], source: str) -> np.ndarray:
    """Reader label codes -> indices into the model's `labels`, matched by name."""
    names = [label_name(v) for v in reader.label_values]
    unknown = [names[k] for k in np.unique(y) if names[k] not in labels]
    if unknown:
        raise DataError(f"labels {unknown} are not classes of this model (its classes: "
                        f"{', '.join(labels)})", source=source)
    index = {lab: i for i, lab in enumerate(labels)}
    return np.array([index.get(n, -1) for n in names], np.int64)[y]


def evaluate_external(path: str | Path, data: str | None = None, target: str | None = None,
                      out: str | Path | None = None) -> ExternalResult:
    """Score the run or package at `path` on `data` (default: the run's own test split).

    A run is scored with its PyTorch weights and writes eval/external-<data name>.json (the
    test metrics in eval/metrics.json are left alone); a package folder is scored with its
    runtime and writes only to `out`, or to its run's eval/ when it sits in a run folder."""
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
    model = _model(run, path)

    cleaning = None
    if data is None:
        if run is None:
            raise RecipeError("--data", got=None, expected="labelled data for a package, e.g. "
                              "--data csv:new.csv --target label")
        from danlu.data.stage import load_splits

        splits = load_splits(run)
        x, y, source = splits.x["test"], splits.y["test"], "test split"
    else:
        source = _source(data)
        target = target or (run.recipe.data.target if run else None)
        clean = run.recipe.preprocess.clean if run else CleanConfig()
        x, y, cleaning = _read(source, target, model, clean)

    if is_package:
        probs, engine = _package_probs(path, x, source)
        name = f"package ({engine})"
    else:
        probs, name = _run_probs(run, x, model.text, source), "run (PyTorch)"
    metrics = score(probs, y, model.labels, cfg, seed)
    doc = {"source": source, "model": name, "path": str(path), **metrics}
    if cleaning is not None:
        doc["cleaning"] = cleaning
    written = None
    if out is not None:
        written = write_json(Path(out), doc)
    elif run is not None and data is not None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source.partition(":")[2]).stem) or "data"
        written = write_json(run.stage_dir("eval") / f"external-{stem}.json", doc)
    return ExternalResult(metrics, source, name, written, cleaning)


def _model(run: Run | None, path: Path) -> _Model:
    """Classes and columns from the run's data/info.json, else from danlu-model.json."""
    if run is not None:
        info = read_json(run.path("data", "info.json"))
        return _Model(list(info["labels"]), info.get("feature_names"), info.get("kind") == "text",
                      info.get("image_shape"))
    from danlu.serve.package import load_package

    pkg = load_package(path)
    if not pkg.labels:
        raise DanluError(f"{path}: danlu-model.json has no labels; cannot score classification")
    return _Model(list(pkg.labels), pkg.meta.get("feature_names"), pkg.text is not None,
                  pkg.meta.get("image_shape"))


def _check_width(x: np.ndarray, features: int, source: str) -> None:
    if x.shape[1] != features:
        raise DataError(f"{x.shape[1]} feature columns, but the model takes {features}; "
                        "give the same columns it was trained on", source=source)


def _package_probs(path: Path, x: np.ndarray, source: str) -> tuple[np.ndarray, str]:
    """Probabilities from the package's own runtime (texts are tokenized by it), and its name."""
    from danlu.serve.package import load_package
    from danlu.serve.runtimes import load_runtime

    pkg = load_package(path)
    rt, spec = load_runtime(pkg), pkg.inputs[0]
    batch = 64  # texts: each batch is padded to its longest
    if pkg.text is None:
        _check_width(x, spec.shape[-1], source)
        x, batch = x.astype(np.float32), 1024
    parts = [rt.run({spec.name: x[i:i + batch]}, ["probabilities"])["probabilities"]
             for i in range(0, len(x), batch)]
    return np.concatenate(parts).astype(np.float64), ENGINES.get(pkg.runtime, pkg.runtime)


def _run_probs(run: Run, x: np.ndarray, text: bool, source: str) -> np.ndarray:
    import torch

    from danlu.evaluate.stage import text_probs
    from danlu.train.checkpoint import load_packaged

    model = load_packaged(run)
    if text:
        return text_probs(run, model, x)
    _check_width(x, int(model.shift.numel()), source)
    with torch.inference_mode():
        probs, _ = model(torch.from_numpy(x.astype(np.float32)))
    return probs.double().numpy()
