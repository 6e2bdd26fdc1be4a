"""prepare(): stream the source, clean it, split it, fit the features; write data/ in the run.

Every step asks the features (danlu.features) what to do with their columns: which rows are
invalid, how rows hash (exact duplicates, leakage), how near duplicates are found, what is fitted
on the training split. Pass 1 streams the source chunk by chunk: invalid rows are counted (or stop
the run), valid rows go to a temporary Parquet file and leave 8-byte hashes and small sketches
behind. Duplicates, label conflicts, near duplicates, the split and leakage are decided on those.
Pass 2 streams the temporary file into data/clean.parquet (the features' columns, `__label__`,
`__split__`, `__row__`) and fits the features on the training rows; an optional pass 3 handles
outliers. Peak memory is one chunk plus a few bytes per row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.clean import CleaningReport, chunk_issues, count_bad_lines, outlier_mask, select_valid
from danlu.data.config import DataConfig, PreprocessConfig
from danlu.data.dedup import components, exact_duplicates, leakage, mix_hashes
from danlu.data.features import build, resolve_features
from danlu.data.problems import Presence, no_rows, nothing_left
from danlu.data.readers import Reader, open_reader
from danlu.data.split import split_codes
from danlu.data.stats import RunningStats
from danlu.errors import DataError, RecipeError
from danlu.runs import write_json

__all__ = ["LABEL", "ROW", "SPLIT", "SPLITS", "chunk_values", "prepare", "table_values"]

SPLITS = ("train", "val", "test")  # __split__ codes 0, 1, 2
LABEL, SPLIT, ROW = "__label__", "__split__", "__row__"


def prepare(out: Path, cfg: DataConfig, pre: PreprocessConfig, seed: int) -> dict[str, Any]:
    """Write clean.parquet, split.json, features.json, info.json, cleaning.json into `out`."""
    clean = pre.clean
    reader = open_reader(cfg.source, cfg.target.column, cfg.chunk_rows, cfg.drop)
    features = build(resolve_features(cfg, reader), reader, pre)
    head = build_head(cfg, reader)
    report = CleaningReport()
    tmp = out / ".valid.parquet"
    try:
        h, y, rows, sketch = _pass1(reader, features, head, cfg, clean, report, tmp)
        if not len(y):
            raise nothing_left(cfg.source, report)
        # the stored targets (label indices, or numbers); a category head refuses one class
        y = head.targets(reader, y, after_cleaning=bool(sum(report.removed.values())))
        groups = head.groups(y)      # equal exactly where targets are equal
        keep = np.ones(len(y), bool)
        unique = bool(clean.duplicates)  # every kept row's features distinct (no leakage check)
        if clean.duplicates:
            dup, conflict = exact_duplicates(h, groups)
            report.add("duplicate", rows[dup])
            report.details["label_conflicts"] = {
                "rows": int(conflict.sum()), "feature_groups": int(len(np.unique(h[conflict])))}
            if head.conflicts_are_noise:
                report.add("label_conflict", rows[conflict])
                keep &= ~conflict
            else:  # a number target is noisy: such rows are samples, kept (leakage splits them)
                report.details["label_conflicts"]["kept"] = True
                unique = not conflict.any()
            keep &= ~dup
        pairs = _near(sketch, clean, keep, groups, report)
        if clean.near_duplicates.drop and len(pairs):
            comp = components(int(keep.sum()), np.arange(int(keep.sum())), pairs)
            later = comp != np.arange(len(comp))  # not the first row of its group
            idx = np.flatnonzero(keep)[later]
            report.add("near_duplicate", rows[idx])
            keep[idx] = False
            pairs = np.empty((0, 2), dtype=np.int64)  # groups now have one row each
        kidx = np.flatnonzero(keep)
        try:
            split, stratified = split_codes(head.strata(y[kidx]), cfg.split.val, cfg.split.test,
                                            seed, cfg.split.stratify)
        except ValueError as e:  # scikit-learn: too few rows for the split's shares
            raise DataError(f"{len(kidx)} rows after cleaning are too few to split into train, "
                            f"val and test ({e}); add rows or change data.split",
                            source=cfg.source) from None
        if clean.leakage:
            if unique and not len(pairs):
                leak = np.zeros(len(kidx), bool)  # every kept row is unique: nothing can leak
            else:
                leak = leakage(components(len(kidx), h[kidx], pairs), split)
            report.details["leakage"] = {s: int((leak & (split == i)).sum()) for i, s in
                                         enumerate(SPLITS) if i}
            report.add("leakage", rows[kidx[leak]])
            kidx, split = kidx[~leak], split[~leak]
        final = np.full(len(y), -1, np.int8)
        final[kidx] = split
        head.fit(y[final == 0])
        _pass2(features, tmp, out / "clean.parquet", final, y, report, clean)
        if clean.outliers.method != "none":
            features = _outliers(features, reader, pre, out / "clean.parquet", report)
    finally:
        tmp.unlink(missing_ok=True)
    return _write_meta(out, cfg, reader, features, head, report, seed, stratified)


def build_head(cfg: DataConfig, reader: Reader) -> Any:
    """The recipe's head (data.target.head) for the source's target column, unfitted."""
    from danlu.features import heads

    cls = heads[cfg.target.head]
    options = {k: v for k, v in cfg.target.options().items() if v is not None}
    for k in options:
        if k not in cls.options_taken:
            raise RecipeError(f"data.target.{k}", got=options[k],
                              expected=f"no {k!r}: the {cls.type} head takes "
                                       f"{', '.join(cls.options_taken) or 'no options'}",
                              hint="remove it, or use a head that takes it (number: loss)")
    return cls(cfg.target.column or reader.target, [], options)


# ---- values: a feature's rows as numpy (float [n, k] or object [n]) ------------------------

def chunk_values(chunk: Any, feature: Any) -> np.ndarray:
    """A feature's values in a reader's chunk: a column group as is, else its columns."""
    cols = chunk.columns
    if feature.parse == "string":
        return np.asarray(cols[feature.columns[0]], dtype=object)
    group = cols.get(feature.name)
    if group is not None and group.ndim == 2 and group.shape[1] == len(feature.columns):
        return group
    return np.column_stack([cols[c] for c in feature.columns]).astype(np.float64, copy=False)


def table_values(table: Any, feature: Any, dtype: Any = np.float32) -> np.ndarray:
    """A feature's values in a pyarrow table/batch of clean.parquet."""
    if feature.parse == "string":
        return np.array(table.column(feature.columns[0]).to_pylist(), dtype=object)
    out = np.empty((table.num_rows, len(feature.columns)), dtype=dtype)
    for j, name in enumerate(feature.columns):
        out[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    return out


def _arrow_columns(feature: Any, values: np.ndarray) -> dict[str, Any]:
    import pyarrow as pa

    if feature.parse == "string":
        return {feature.columns[0]: pa.array([None if v is None else str(v) for v in values],
                                             pa.string())}
    return {c: pa.array(values[:, j], pa.float32()) for j, c in enumerate(feature.columns)}


# ---- pass 1: check, hash, sketch, keep the valid rows -------------------------------------

def _pass1(reader: Reader, features: list, head: Any, cfg: DataConfig, clean,
           report: CleaningReport, tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    hs, ys, rows, sketches = [], [], [], []
    near = _near_feature(features)
    parse = {c: f.parse for f in features for c in f.columns}
    writer = None
    seen_bad = 0
    presence = Presence([c for f in features for c in f.columns])
    try:
        for chunk in reader.chunks(parse):
            report.rows_in += len(chunk)
            presence.update(chunk)
            values = {f.name: chunk_values(chunk, f) for f in features}
            issues = chunk_issues(chunk, values, features, clean, reader.target)
            issues += head.invalid(chunk.labels, reader.label_values, reader.target)
            try:
                valid = select_valid(chunk.rows, issues, clean.invalid, report, cfg.source)
            except DataError as e:  # `fail`: a wrong-length line before this row fails first
                count_bad_lines(reader, clean.invalid, report, seen_bad, cfg.source, before=e.row)
                raise
            seen_bad = count_bad_lines(reader, clean.invalid, report, seen_bad, cfg.source)
            ys.append(chunk.labels[valid])
            rows.append(chunk.rows[valid])
            kept = {name: v[valid] for name, v in values.items()}
            hs.append(mix_hashes([f.hashes(kept[f.name]) for f in features]))
            if near is not None:
                sketches.append(near.sketch(kept[near.name]))
            cols: dict[str, Any] = {}
            for f in features:
                cols.update(_arrow_columns(f, kept[f.name]))
            cols[LABEL] = pa.array(chunk.labels[valid], pa.int64())
            cols[ROW] = pa.array(chunk.rows[valid], pa.int64())
            table = pa.table(cols)
            if writer is None:
                # A scratch file read once: no compression, no dictionaries (floats rarely repeat).
                writer = pq.ParquetWriter(tmp, table.schema, compression="none", use_dictionary=False)
            writer.write_table(table)
        count_bad_lines(reader, clean.invalid, report, seen_bad, cfg.source)
    finally:
        if writer is not None:
            writer.close()
    if writer is None or not report.rows_in:
        raise no_rows(cfg.source, [*reader.columns, *([reader.target] if reader.target else [])])
    presence.check(cfg.source, declared=cfg.features is not None)

    def cat(parts: list, dt) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dt)

    sketch = None
    if near is not None:
        sketch = (near, tuple(np.concatenate(p) for p in zip(*sketches, strict=True)))
    return cat(hs, np.uint64), cat(ys, np.int64), cat(rows, np.int64), sketch


def _near_feature(features: list):
    """The feature that finds near duplicates when it is the only one (an image, a text), or
    None: in a table, rows whose texts nearly match may still differ in every other column."""
    from danlu.features.base import Feature

    if len(features) != 1 or type(features[0]).sketch is Feature.sketch:
        return None
    return features[0]


def _near(sketch, clean, keep: np.ndarray, y: np.ndarray, report: CleaningReport) -> np.ndarray:
    """Near-duplicate pairs among kept rows (indices into the kept rows), reported in details."""
    nd = clean.near_duplicates
    if not nd.enabled or sketch is None:
        return np.empty((0, 2), dtype=np.int64)
    feature, parts = sketch
    kidx = np.flatnonzero(keep)
    pairs, how = feature.near_pairs(tuple(p[kidx] for p in parts), nd)
    yk = y[kidx]
    report.details["near_duplicates"] = {
        **how, "pairs": len(pairs), "rows": int(len(np.unique(pairs))),
        "pairs_with_different_labels": int((yk[pairs[:, 0]] != yk[pairs[:, 1]]).sum()) if len(pairs) else 0,
        "dropped": bool(nd.drop)}
    return pairs


def _iter_batches(path: Path, rows: int):
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=rows)


# ---- pass 2: the clean file, and the features fitted on its training rows -----------------

def _pass2(features: list, tmp: Path, dest: Path, final: np.ndarray, y: np.ndarray,
           report: CleaningReport, clean: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = dest.with_name(f".{dest.name}.tmp")
    writer, pos = None, 0
    try:
        for batch in _iter_batches(tmp, 100_000):
            n = batch.num_rows
            split, lab = final[pos:pos + n], y[pos:pos + n]
            pos += n
            sel = np.flatnonzero(split >= 0)
            batch = batch.take(pa.array(sel))
            cols = {c: batch.column(c) for c in batch.schema.names if c not in (LABEL, ROW)}
            table = pa.table({**cols, LABEL: pa.array(lab[sel], pa.from_numpy_dtype(lab.dtype)),
                              SPLIT: pa.array(split[sel], pa.int8()), ROW: batch.column(ROW)})
            report.count_imputed(features, {f.name: table_values(batch, f, np.float64)
                                            for f in features if f.imputes(clean)}, clean)
            train = split[sel] == 0
            if train.any():
                rows = batch.take(pa.array(np.flatnonzero(train)))
                for f in features:
                    f.partial_fit(table_values(rows, f, np.float64))
            if writer is None:
                writer = pq.ParquetWriter(part, table.schema, use_dictionary=[LABEL, SPLIT])
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise DataError("no rows are left after cleaning (see data/cleaning.json)")
    os.replace(part, dest)


def _outliers(features: list, reader: Reader, pre: PreprocessConfig, path: Path,
              report: CleaningReport) -> list:
    """Outliers of the training rows by train statistics, in the features that take them
    (numbers); flag counts them, drop removes them and refits the features."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = pre.clean.outliers
    numeric = [f for f in features if getattr(f, "outliers", False)]
    if not numeric:
        raise RecipeError("preprocess.clean.outliers.method", got=cfg.method,
                          expected="'none' for data without number features (outliers are for "
                                   "tables)")

    def x_of(batch) -> np.ndarray:
        return np.column_stack([table_values(batch, f, np.float64) for f in numeric])

    width = sum(len(f.columns) for f in numeric)
    stats = RunningStats(width)
    for batch in _iter_batches(path, 100_000):
        train = batch.column(SPLIT).to_numpy() == 0
        stats.update(x_of(batch)[train], keep_sample=cfg.method == "iqr")
    report.details["outliers"] = {"method": cfg.method, "threshold": cfg.threshold,
                                  "action": cfg.action, "scope": "train split"}
    refit = build([(f.name, f.type, f.columns, f.options) for f in features], reader, pre,
                  resolved=True)
    part = path.with_name(f".{path.name}.tmp")
    writer = None
    try:
        for batch in _iter_batches(path, 100_000):
            train = batch.column(SPLIT).to_numpy() == 0
            out = outlier_mask(x_of(batch), stats, cfg) & train
            report.add("outlier", batch.column(ROW).to_numpy()[out], removed=cfg.action == "drop")
            if cfg.action == "drop":
                keep = np.flatnonzero(~out)
                batch = batch.take(pa.array(keep))
                kept_train = np.flatnonzero(train[keep])
                if len(kept_train):
                    rows = batch.take(pa.array(kept_train))
                    for f in refit:
                        f.partial_fit(table_values(rows, f, np.float64))
                if writer is None:
                    writer = pq.ParquetWriter(part, batch.schema, use_dictionary=[LABEL, SPLIT])
                writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
    if cfg.action == "drop":
        os.replace(part, path)
        return refit
    return features


def _write_meta(out: Path, cfg: DataConfig, reader: Reader, features: list, head: Any,
                report: CleaningReport, seed: int, stratified: bool) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(out / "clean.parquet", columns=[LABEL, SPLIT])
    lab, spl = t.column(LABEL).to_numpy(), t.column(SPLIT).to_numpy()
    sizes = {s: int(pc.sum(pc.equal(t.column(SPLIT), i)).as_py() or 0) for i, s in enumerate(SPLITS)}
    write_json(out / "split.json", {"column": SPLIT, "codes": {s: i for i, s in enumerate(SPLITS)},
                                    "rows": sizes, "seed": seed,
                                    "stratified": stratified})
    write_json(out / "features.json", {"features": [f.describe() for f in features],
                                       "target": head.describe()})
    cleaning = report.to_dict(rows_out=len(lab))
    write_json(out / "cleaning.json", cleaning)
    columns = [c for f in features for c in f.columns]
    info = {"source": cfg.source, "rows": len(lab), "columns": len(columns),
            "feature_names": columns, "feature_types": {f.name: f.type for f in features},
            "labels": head.labels, "task": head.task,
            "image_shape": next((f.image_shape for f in features if f.image_shape), None),
            **head.target_summary(lab, spl, SPLITS), "stratified": stratified}
    write_json(out / "info.json", info)
    return {"sizes": sizes, "cleaning": cleaning, "info": info}
