"""`danlu init`: read a table once (streaming), type every column by the feature types'
`recognise` (the data stage infers the same way when a recipe declares no features), and write a
commented starter recipe with the evidence for each choice."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from danlu.data.features import ColumnSummary, infer_features
from danlu.data.readers import label_name, open_reader
from danlu.errors import DataError, RecipeError

__all__ = ["init_recipe", "inspect_table", "starter_recipe"]

MAX_CLASSES = 50     # a target with more distinct values looks like regression
IMBALANCE = 3.0      # largest / smallest class share above which accuracy misleads


def inspect_table(source: str, target: str, chunk_rows: int = 200_000
                  ) -> tuple[dict[str, ColumnSummary], dict[str, int]]:
    """Every column summarized (cells as text) over the whole file, and the target's class counts."""
    scheme = source.partition(":")[0]
    if scheme not in ("csv", "parquet"):
        raise RecipeError("source", got=source, expected="csv:PATH or parquet:PATH of an existing file")
    try:
        reader = open_reader(source, target, chunk_rows)
    except RecipeError as e:
        if e.path == "data.target":
            raise RecipeError("--target", got=target, expected=e.expected) from None
        raise
    summaries = {c: ColumnSummary(c) for c in reader.columns}
    codes: list[np.ndarray] = []
    for chunk in reader.chunks({c: "string" for c in reader.columns}):
        for c, s in summaries.items():
            s.update(list(chunk.columns[c]))
        codes.append(chunk.labels)
    y = np.concatenate(codes) if codes else np.empty(0, np.int64)
    counts = np.bincount(y[y >= 0], minlength=len(reader.label_values))
    classes = {label_name(v): int(n) for v, n in zip(reader.label_values, counts, strict=True)}
    if not summaries or not len(y):
        raise DataError("the file has no rows" if summaries else "the file has no columns",
                        source=source)
    return summaries, classes


def _continuous(classes: dict[str, int]) -> bool:
    """Many distinct target values, or non-integer numbers: a regression target."""
    if len(classes) > MAX_CLASSES:
        return True
    try:
        return any(not float(k).is_integer() for k in classes)
    except ValueError:
        return False


def starter_recipe(source: str, target: str, summaries: dict[str, ColumnSummary],
                   classes: dict[str, int]) -> str:
    """A commented starter recipe classifying `target` from every useful column."""
    if _continuous(classes):
        raise DataError(f"target {target!r} looks continuous ({len(classes)} distinct values): a "
                        "regression task; danlu's models classify (regression is planned). Pick "
                        "a categorical column as --target", source=source)
    kept, dropped = infer_features(summaries)
    if not kept:
        raise DataError("no usable feature columns are left after dropping ID-like, constant and "
                        "empty columns", source=source)
    rows = next(iter(summaries.values())).rows
    ratio = max(classes.values()) / max(min(classes.values()), 1)
    imbalanced = ratio > IMBALANCE
    width = int(min(256, max(32, 2 ** math.ceil(math.log2(2 * len(kept))))))
    epochs = 100 if rows < 1_000 else 50 if rows < 10_000 else 20 if rows < 100_000 else 10
    batch = 32 if rows < 2_000 else 64 if rows < 20_000 else 128 if rows < 200_000 else 256
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(source.partition(":")[2]).stem).strip("-.") or "data"
    balance = ", ".join(f"{k}: {v}" for k, v in sorted(classes.items(), key=lambda kv: -kv[1])[:12])
    lines = [
        f"# Starter recipe written by `danlu init {source} --target {target}`.",
        f"# {rows:,} rows; task: classification of {target!r} ({len(classes)} classes).",
        f"# Class balance: {balance}{' ...' if len(classes) > 12 else ''}.",
    ]
    if imbalanced:
        lines += [f"# WARNING: imbalanced classes (largest/smallest = {ratio:.1f}): accuracy can look good",
                  "# while a small class is never predicted; early stopping watches val.f1_macro instead."]
    lines += ["version: 2", f"name: {name}", "seed: 0", "", "data:",
              f"  source: {source}", f"  target: {_yaml_key(target)}",
              "  # Each column's feature type, recognised from the whole file (docs/data.md):"]
    lines.append("  features:")
    lines += [f"    {_yaml_key(c)}: {t:<10} # {summaries[c].describe()}" for c, t in kept.items()]
    if dropped:
        lines.append(f"  drop: [{', '.join(_yaml_key(c) for c in dropped)}]")
        lines += [f"  #   {c}: {why}" for c, why in dropped.items()]
    lines += ["  split: {val: 0.15, test: 0.2, stratify: true}", "",
              "preprocess:",
              "  normalize: zscore      # fitted on the training split; inside the exported ONNX graph",
              "  clean:",
              "    invalid: drop        # missing/non-numeric rows: removed, counted in data/cleaning.json",
              "    duplicates: true", "",
              f"# {len(kept)} feature columns -> an MLP sized to them.",
              "model:", "  arch: mlp", f"  hidden: [{width}, {width}]", "  dropout: 0.1", "",
              f"# Epochs and batch size sized to {rows:,} rows; early stopping keeps the best epoch.",
              "train:", f"  epochs: {epochs}", f"  batch_size: {batch}",
              "  optimizer: {name: adam, lr: 0.001}",
              f"  early_stopping: {{metric: {'val.f1_macro' if imbalanced else 'val.accuracy'}, "
              "patience: 10}",
              "", "evaluate:", "  gate: {}                 # e.g. {accuracy: 0.9}: below it, no package", ""]
    return "\n".join(lines)


def _yaml_key(name: str) -> str:
    """A column name as a YAML key (quoted when YAML would read it otherwise)."""
    import yaml

    plain = yaml.safe_dump({name: 0}).strip()
    return plain[: -len(": 0")]


def init_recipe(source: str, target: str) -> str:
    """`danlu init`'s recipe text for `source`."""
    return starter_recipe(source, target, *inspect_table(source, target))

