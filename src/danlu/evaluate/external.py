"""`danlu evaluate`: score a trained run (PyTorch) or a model package (its runtime) on new
labelled data, with the same metrics, intervals and warnings as the evaluate stage.

New data is read by the data stage's readers (any scheme of data.source) and cleaned by its
rules (`preprocess.clean` of the run, the defaults for a package alone): invalid rows are
dropped and counted, missing numbers imputed (in the model's graph) and counted, as in
data/cleaning.json."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.clean import CleaningReport, chunk_issues, count_bad_lines, select_valid
from danlu.data.config import CleanConfig
from danlu.data.readers import Reader, open_reader, schemes
from danlu.data.readers.csv import COMPRESSION
from danlu.errors import DanluError, DataError, RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.features.base import take
from danlu.runs import Run, write_json

__all__ = ["ExternalResult", "evaluate_external"]

# A bare path's suffix -> its scheme of data.source.
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl"}
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
    """What scoring new data for a model needs: its fitted features (what it reads) and head."""

    features: list[Any]
    head: Any

    @property
    def labels(self) -> list[str]:
        return self.head.labels


def _source(data: str) -> str:
    """`SCHEME:REST` for any scheme of data.source, or a bare path whose suffix says which."""
    scheme, sep, _ = data.partition(":")
    if sep and not Path(data).exists():
        try:
            schemes[scheme]
        except RecipeError as e:  # names the schemes and the closest one
            raise RecipeError("--data", got=data, expected=e.expected, hint=e.hint) from None
        return data
    path = Path(data)
    if path.suffix.lower() in COMPRESSION:  # data.csv.gz: the suffix before the codec's
        path = path.with_suffix("")
    scheme = SUFFIXES.get(path.suffix.lower())
    if scheme:
        return f"{scheme}:{data}"
    raise RecipeError("--data", got=data, expected=f"SCHEME:PATH with a scheme of data.source "
                      f"({', '.join(schemes.names())}) or a .csv/.tsv/.parquet/.jsonl file")


def _open(source: str, target: str | None) -> Reader:
    """open_reader, with its recipe keys named as the options of `danlu evaluate`."""
    try:
        return open_reader(source, target)
    except RecipeError as e:
        if e.path == "data.target":
            raise RecipeError("--target", got=target, expected=e.expected if target else
                              "the label column of the new data, e.g. --target label",
                              hint=e.hint if target else None) from None
        if e.path == "data.source":
            raise RecipeError("--data", got=e.got, expected=e.expected, hint=e.hint) from None
        raise


def _read(source: str, target: str | None, model: _Model,
          clean: CleanConfig) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """(each feature's values, label indices into model.labels, cleaning counts) of `source`'s
    valid rows: the model's columns matched by name, checked by the data stage's rules."""
    from danlu.data.prepare import chunk_values

    reader = _open(source, target)
    have = set(reader.columns) | set(reader.groups)
    missing = [c for f in model.features for c in f.columns
               if c not in have and f.name not in reader.groups]
    if missing:  # the labels are checked first: a file of another task says so
        codes = [c.labels for c in reader.chunks({})]
        model.head.new_targets(reader, np.concatenate(codes) if codes else np.empty(0, np.int64))
        raise DataError(f"no column {', '.join(map(repr, missing[:5]))}"
                        f"{f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''}; the "
                        f"model's features are matched to columns by name", source=source)
    parse = {c: f.parse for f in model.features for c in f.columns if c in reader.columns}
    report, parts, ys, seen = CleaningReport(), [], [], 0
    for chunk in reader.chunks(parse):
        report.rows_in += len(chunk)
        values = {f.name: chunk_values(chunk, f) for f in model.features}
        issues = chunk_issues(chunk, values, model.features, clean, reader.target)
        issues += model.head.invalid(chunk.labels, reader.label_values, reader.target)
        try:
            valid = select_valid(chunk.rows, issues, clean.invalid, report, source)
        except DataError as e:  # `fail`: a wrong-length line before this row fails first
            count_bad_lines(reader, clean.invalid, report, seen, source, before=e.row)
            raise
        seen = count_bad_lines(reader, clean.invalid, report, seen, source)
        parts.append(take(values, valid))
        report.count_imputed(model.features, parts[-1], clean)
        ys.append(chunk.labels[valid])
    count_bad_lines(reader, clean.invalid, report, seen, source)
    y = np.concatenate(ys) if ys else np.empty(0, np.int64)
    cleaning = report.to_dict(rows_out=len(y))
    if not len(y):
        raise DataError(f"no valid rows to score: {cleaning['rows_in']} read, removed by reason "
                        f"{cleaning['removed']}", source=source)
    values = {f.name: np.concatenate([p[f.name] for p in parts]) for f in model.features}
    return values, model.head.new_targets(reader, y), cleaning


def evaluate_external(path: str | Path, data: str | None = None, target: str | None = None,
                      out: str | Path | None = None) -> ExternalResult:
    """Score the run or package at `path` on `data` (default: the run's own test split).

    A run is scored with its PyTorch weights and writes eval/external-<data name>.json (the
    test metrics in eval/metrics.json are left alone); a package folder is scored with its
    runtime and writes only to `out`, or to its run's eval/ when it sits in a run folder."""
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
    scorer = _package(path) if is_package else _run(run)
    model = scorer.model

    cleaning = None
    if data is None:
        if run is None:
            raise RecipeError("--data", got=None, expected="labelled data for a package, e.g. "
                              "--data csv:new.csv --target label")
        from danlu.data.stage import load_splits

        splits = load_splits(run)
        values, y, source = splits.values["test"], splits.y["test"], "test split"
    else:
        source = _source(data)
        target = target or (run.recipe.data.target.column if run else None) or model.head.column
        clean = run.recipe.preprocess.clean if run else CleanConfig()
        values, y, cleaning = _read(source, target, model, clean)

    metrics = model.head.evaluate(scorer.predict(values), y, cfg, seed)
    doc = {"source": source, "model": scorer.name, "path": str(path), **metrics}
    if cleaning is not None:
        doc["cleaning"] = cleaning
    written = None
    if out is not None:
        written = write_json(Path(out), doc)
    elif run is not None and data is not None:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source.partition(":")[2]).stem) or "data"
        written = write_json(run.stage_dir("eval") / f"external-{stem}.json", doc)
    return ExternalResult(metrics, source, scorer.name, written, cleaning)


@dataclass
class _Scorer:
    model: _Model
    name: str
    predict: Any  # values -> the head's first output for every row


def _run(run: Run) -> _Scorer:
    """The run's trained model in PyTorch (evaluation's own module)."""
    from danlu.models.load import load_model
    from danlu.models.packaged import predict

    loaded = load_model(run.path("train", "model"))
    module = loaded.packaged()
    return _Scorer(_Model(loaded.features, loaded.head), "run (PyTorch)",
                   lambda values: predict(module, values)[0])


def _package(path: Path) -> _Scorer:
    """The package's default runtime, raw values encoded by its features as the server does."""
    from danlu.features import load_head
    from danlu.serve.package import load_package
    from danlu.serve.runtimes import load_runtime

    pkg = load_package(path)
    if not pkg.features or not pkg.meta.get("head"):
        raise DanluError(f"{path}: danlu-model.json lists no features or head (a package from "
                         "danlu before 0.2); rerun `danlu run` to export it again")
    rt, first = load_runtime(pkg), pkg.outputs[0].name

    def predict(values: dict[str, np.ndarray]) -> np.ndarray:
        return rt.run_rows(values, [first])[first].astype(np.float64)

    engine = ENGINES.get(pkg.runtime, pkg.runtime)
    return _Scorer(_Model(pkg.features, load_head(pkg.meta["head"])), f"package ({engine})",
                   predict)
