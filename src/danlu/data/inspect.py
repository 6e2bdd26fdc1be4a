"""`danlu init`: inspect a csv/parquet file in one streaming pass and write a starter recipe."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from danlu.errors import DataError, RecipeError

__all__ = ["ColumnStats", "inspect_table", "starter_recipe"]

MAX_DISTINCT = 1000  # distinct values tracked per column; beyond this a column counts as "many"
MAX_CLASSES = 50     # an integer target with more distinct values looks like regression
IMBALANCE = 3.0      # largest / smallest class share above which accuracy misleads
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|index|key)$", re.IGNORECASE)


@dataclass
class ColumnStats:
    name: str
    type: str = "null"
    rows: int = 0
    nulls: int = 0
    values: set = field(default_factory=set)
    many: bool = False                 # more than MAX_DISTINCT distinct values
    increasing: bool = True            # strictly increasing so far (row counters)
    last: object = None

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "float", "bool", "null")

    @property
    def constant(self) -> bool:
        return not self.many and len(self.values) <= 1

    # Every value distinct: checked exactly within each chunk and across chunks while fewer than
    # MAX_DISTINCT values are tracked (beyond that, across chunks is not re-checked).
    _distinct_so_far: bool = True

    @property
    def all_distinct(self) -> bool:
        return self.nulls == 0 and self._distinct_so_far and self.rows > 1


def _kind(t) -> str:
    import pyarrow as pa

    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_null(t):
        return "null"
    return "string"


def _batches(source: str, chunk_rows: int):
    import pyarrow as pa

    kind, _, rest = source.partition(":")
    path = Path(rest)
    if kind not in ("csv", "parquet") or not path.is_file():
        raise RecipeError("source", got=source, expected="csv:PATH or parquet:PATH of an existing file")
    if kind == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=chunk_rows)
        return
    import pyarrow.csv as pacsv

    from danlu.data.readers import csv_blocks

    # Every column as text: one pass that never fails on a mixed column; types are inferred per
    # column from what its cells parse as. Blocks of whole lines, as the data stage reads them.
    with path.open(newline="", encoding="utf-8") as f:
        import csv

        header = next(csv.reader(f), [])
    for block in csv_blocks(path, chunk_rows):
        yield pacsv.read_csv(pa.BufferReader(block), read_options=pacsv.ReadOptions(
            column_names=header, block_size=len(block) + 1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda r: "skip"),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}))


def _typed(col):
    """The column cast to the narrowest of int64, float64, or left as text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_string(col.type):
        return col
    col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), pa.scalar(None, pa.string()), col)
    for t in (pa.int64(), pa.float64()):
        try:
            return col.cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return col


def inspect_table(source: str, chunk_rows: int = 200_000) -> dict[str, ColumnStats]:
    """Per-column type, null count, distinct values (up to MAX_DISTINCT), constant, ID-likeness."""
    import pyarrow.compute as pc

    stats: dict[str, ColumnStats] = {}
    order = ["null", "bool", "int", "float", "string"]
    for batch in _batches(source, chunk_rows):
        for name in batch.schema.names:
            s = stats.setdefault(name, ColumnStats(name))
            col = _typed(batch.column(name))
            k = _kind(col.type)
            s.type = max(s.type, k, key=order.index) if k != "null" else s.type
            s.rows += len(col)
            s.nulls += col.null_count
            uniq = pc.unique(col.drop_null())
            if len(uniq) < len(col) - col.null_count:
                s._distinct_so_far = False
            if not s.many:
                before = len(s.values)
                s.values.update(uniq.to_pylist())
                if before + len(uniq) != len(s.values):
                    s._distinct_so_far = False
                if len(s.values) > MAX_DISTINCT:
                    s.many, s.values = True, set()
            if k in ("int", "float") and s.increasing and len(col) - col.null_count > 0:
                vals = col.drop_null().to_numpy(zero_copy_only=False)
                s.increasing = bool((vals[1:] > vals[:-1]).all()) and (
                    s.last is None or vals[0] > s.last)
                s.last = vals[-1]
            elif k not in ("int", "float"):
                s.increasing = False
    if not stats:
        raise DataError("the file has no columns", source=source)
    return stats


def starter_recipe(source: str, target: str, stats: dict[str, ColumnStats]) -> str:
    """A commented starter recipe for classifying `target` from the numeric columns."""
    if target not in stats:
        raise RecipeError("--target", got=target, expected=f"a column: one of {', '.join(stats)}")
    t = stats[target]
    if t.many or (t.type == "float" and any(not float(v).is_integer() for v in t.values)) \
            or len(t.values) > MAX_CLASSES:
        distinct = f">{MAX_DISTINCT}" if t.many else str(len(t.values))
        raise DataError(f"target {target!r} looks continuous ({distinct} distinct values): a "
                        "regression task; danlu's models classify (regression "
                        "is planned). Pick a categorical column as --target", source=source)
    rows = t.rows
    drops, notes = [], []
    for s in stats.values():
        if s.name == target:
            continue
        if s.constant:
            drops.append(s.name)
            notes.append(f"{s.name}: constant ({next(iter(s.values), None)!r}), carries no information")
        elif s.all_distinct and (not s.numeric or s.increasing or _ID_NAME.search(s.name)):
            drops.append(s.name)
            notes.append(f"{s.name}: ID-like (every value distinct), would only let a model memorize rows")
        elif not s.numeric:
            drops.append(s.name)
            notes.append(f"{s.name}: text/categorical; danlu's table features are numeric")
    features = [n for n in stats if n != target and n not in drops]
    if not features:
        raise DataError("no numeric feature columns are left after dropping ID-like, constant and "
                        "text columns", source=source)
    counts = _class_counts(source, target)
    ratio = max(counts.values()) / max(min(counts.values()), 1)
    imbalanced = ratio > IMBALANCE
    width = int(min(256, max(32, 2 ** math.ceil(math.log2(2 * len(features))))))
    epochs = 100 if rows < 1_000 else 50 if rows < 10_000 else 20 if rows < 100_000 else 10
    batch = 32 if rows < 2_000 else 64 if rows < 20_000 else 128 if rows < 200_000 else 256
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(source.partition(":")[2]).stem).strip("-.") or "data"
    balance = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:12])
    lines = [
        f"# Starter recipe written by `danlu init {source} --target {target}`.",
        f"# {rows:,} rows; task: classification of {target!r} ({len(counts)} classes, {t.type} values).",
        f"# Class balance: {balance}{' ...' if len(counts) > 12 else ''}.",
    ]
    if imbalanced:
        lines += [f"# WARNING: imbalanced classes (largest/smallest = {ratio:.1f}): accuracy can look good",
                  "# while a small class is never predicted; early stopping watches val.f1_macro instead."]
    lines += ["version: 1", f"name: {name}", "seed: 0", "", "data:",
              f"  source: {source}", f"  target: {target}"]
    if drops:
        lines.append(f"  drop: [{', '.join(drops)}]   # see below")
        lines += [f"  #   {n}" for n in notes]
    lines += ["  split: {val: 0.15, test: 0.2, stratify: true}", "",
              "preprocess:",
              "  normalize: zscore      # fitted on the training split; inside the exported ONNX graph",
              "  clean:",
              "    invalid: drop        # missing/non-numeric rows: removed, counted in data/cleaning.json",
              "    duplicates: true", "",
              f"# {len(features)} numeric features -> an MLP sized to them.",
              "model:", "  arch: mlp", f"  hidden: [{width}, {width}]", "  dropout: 0.1", "",
              f"# Epochs and batch size sized to {rows:,} rows; early stopping keeps the best epoch.",
              "train:", f"  epochs: {epochs}", f"  batch_size: {batch}",
              "  optimizer: {name: adam, lr: 0.001}",
              f"  early_stopping: {{metric: {'val.f1_macro' if imbalanced else 'val.accuracy'}, "
              "patience: 10}",
              "", "evaluate:", "  gate: {}                 # e.g. {accuracy: 0.9}: below it, no package", ""]
    return "\n".join(lines)


def _class_counts(source: str, target: str) -> dict[str, int]:
    import pyarrow.compute as pc

    counts: dict[str, int] = {}
    for batch in _batches(source, 200_000):
        col = _typed(batch.column(target)).drop_null()
        vc = pc.value_counts(col)
        for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
            key = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            counts[key] = counts.get(key, 0) + c
    return counts
