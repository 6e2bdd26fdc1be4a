"""prepare(): stream the source, clean it, split it, fit the normalizer; write data/ in the run.

Pass 1 streams the source chunk by chunk: invalid rows are counted (or stop the run), valid rows
go to a temporary Parquet file and leave 8-byte hashes behind. Duplicates, label conflicts, near
duplicates, the split and leakage are decided on those hashes. Pass 2 streams the temporary file
into data/clean.parquet (with `__label__`, `__split__`, `__row__` columns) and fits the
normalizer on the training rows; an optional pass 3 handles outliers. Peak memory is one chunk
plus a few bytes per row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.clean import CleaningReport, check_chunk, outlier_mask
from danlu.data.config import DataConfig, PreprocessConfig
from danlu.data.dedup import (
    average_hash,
    components,
    confirm_by_pixels,
    exact_duplicates,
    leakage,
    near_pairs_hash,
    near_pairs_text,
    row_hashes,
    text_hashes,
)
from danlu.data.normalize import Normalizer
from danlu.data.readers import Reader, open_reader
from danlu.data.split import split_codes
from danlu.data.stats import RunningStats
from danlu.errors import DataError, RecipeError
from danlu.runs import write_json

__all__ = ["SPLITS", "prepare"]

SPLITS = ("train", "val", "test")  # __split__ codes 0, 1, 2
LABEL, SPLIT, ROW = "__label__", "__split__", "__row__"


def prepare(out: Path, cfg: DataConfig, pre: PreprocessConfig, seed: int) -> dict[str, Any]:
    """Write clean.parquet, split.json, normalizer.json, info.json, cleaning.json into `out`."""
    clean = pre.clean
    reader = open_reader(cfg.source, cfg.target, cfg.text_field, cfg.chunk_rows, cfg.image_shape,
                         cfg.drop)
    if pre.per == "channel" and reader.kind != "image":
        raise RecipeError("preprocess.per", got="channel", expected="image data for per-channel "
                          "normalization", hint="use per: feature, or set data.image_shape")
    report = CleaningReport()
    tmp = out / ".valid.parquet"
    try:
        kept = _pass1(reader, cfg, clean, report, tmp)
        h, y, rows, near_key, thumbs, texts = kept
        names, y = _label_names(reader, y)
        if len(names) < 2:
            raise DataError(f"the cleaned data has {len(names)} class; classification needs 2 or more",
                            source=cfg.source)
        keep = np.ones(len(y), bool)
        if clean.duplicates:
            dup, conflict = exact_duplicates(h, y)
            report.add("duplicate", rows[dup])
            report.add("label_conflict", rows[conflict])
            report.details["label_conflicts"] = {
                "rows": int(conflict.sum()), "feature_groups": int(len(np.unique(h[conflict])))}
            keep &= ~dup & ~conflict
        pairs = _near(reader, clean, keep, (near_key, thumbs), texts, y, report)
        if clean.near_duplicates.drop and len(pairs):
            comp = components(int(keep.sum()), np.arange(int(keep.sum())), pairs)
            later = comp != np.arange(len(comp))  # not the first row of its group
            idx = np.flatnonzero(keep)[later]
            report.add("near_duplicate", rows[idx])
            keep[idx] = False
            pairs = np.empty((0, 2), dtype=np.int64)  # groups now have one row each
        kidx = np.flatnonzero(keep)
        split, stratified = split_codes(y[kidx], cfg.split.val, cfg.split.test, seed,
                                        cfg.split.stratify)
        if clean.leakage:
            if clean.duplicates and not len(pairs):
                leak = np.zeros(len(kidx), bool)  # every kept row is unique: nothing can leak
            else:
                leak = leakage(components(len(kidx), h[kidx], pairs), split)
            report.details["leakage"] = {s: int((leak & (split == i)).sum()) for i, s in
                                         enumerate(SPLITS) if i}
            report.add("leakage", rows[kidx[leak]])
            kidx, split = kidx[~leak], split[~leak]
        final = np.full(len(y), -1, np.int8)
        final[kidx] = split
        norm = _pass2(reader, pre, tmp, out / "clean.parquet", final, y, names)
        if clean.outliers.method != "none":
            if reader.kind != "table":
                raise RecipeError("preprocess.clean.outliers.method", got=clean.outliers.method,
                                  expected="'none' for image and text data (outliers are for tables)")
            norm = _outliers(reader, pre, out / "clean.parquet", report, norm)
    finally:
        tmp.unlink(missing_ok=True)
    return _write_meta(out, cfg, pre, reader, names, norm, report, seed, stratified)


def _pass1(reader: Reader, cfg: DataConfig, clean, report: CleaningReport, tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    hs, ys, rows, keys, thumbs, texts = [], [], [], [], [], []
    writer = None
    seen_bad = 0
    try:
        for chunk in reader.chunks():
            report.rows_in += len(chunk)
            try:
                valid = check_chunk(chunk, reader, clean, report, cfg.source)
            except DataError as e:  # `fail`: a wrong-length line before this row fails first
                _bad_lines(reader, cfg, clean.invalid, report, seen_bad, before=e.row)
                raise
            seen_bad = _bad_lines(reader, cfg, clean.invalid, report, seen_bad)
            ys.append(chunk.labels[valid])
            rows.append(chunk.rows[valid])
            cols: dict[str, Any] = {}
            if chunk.x is not None:
                x = chunk.x[valid]
                hs.append(row_hashes(x))
                if reader.kind == "image":
                    key, thumb = average_hash(x, reader.image_shape)
                    keys.append(key)
                    thumbs.append(thumb)
                cols = {n: pa.array(x[:, j], pa.float32()) for j, n in enumerate(reader.feature_names)}
            else:
                t = chunk.text[valid]
                hs.append(text_hashes(t))
                texts.append(t)
                cols = {reader.feature_names[0]: pa.array(t.tolist(), pa.string())}
            cols[LABEL] = pa.array(chunk.labels[valid], pa.int64())
            cols[ROW] = pa.array(chunk.rows[valid], pa.int64())
            table = pa.table(cols)
            if writer is None:
                # A scratch file read once: no compression, no dictionaries (floats rarely repeat).
                writer = pq.ParquetWriter(tmp, table.schema, compression="none", use_dictionary=False)
            writer.write_table(table)
        report.rows_in += _bad_lines(reader, cfg, clean.invalid, report, seen_bad)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise DataError("the source has no rows", source=cfg.source)
    def cat(parts: list, dt) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dt)

    return (cat(hs, np.uint64), cat(ys, np.int64), cat(rows, np.int64),
            cat(keys, np.uint64) if keys else None, np.concatenate(thumbs) if thumbs else None,
            cat(texts, object) if texts else None)


def _bad_lines(reader: Reader, cfg: DataConfig, policy: str, report: CleaningReport, seen: int,
               before: int | None = None) -> int:
    """Count csv rows with the wrong number of columns; with `fail`, stop at the first one
    (when `before` is given, only if it comes before that row)."""
    bad = getattr(reader, "bad_lines", [])
    if len(bad) > seen:
        new = bad[seen:]
        if before is not None and new[0][0] > before:
            return seen
        if policy == "fail":
            row, text = new[0]
            raise DataError(f"wrong number of columns ({text[:80]!r}, expected "
                            f"{len(reader.feature_names) + 1}); preprocess.clean.invalid is 'fail' "
                            "(use 'drop' to remove and count such rows)", row=row, source=cfg.source)
        report.removed["wrong_column_count"] += len(new)
        ex = report.examples.setdefault("wrong_column_count", [])
        ex.extend({"row": r, "text": t[:200]} for r, t in new[: max(0, 5 - len(ex))])
    return len(bad)


def _label_names(reader: Reader, y: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Final label names (sorted unless the source fixes them) and y recoded to match."""
    if reader.fixed_labels:
        return [str(v) for v in reader.label_values], y
    values = reader.label_values
    order = sorted(range(len(values)), key=lambda i: (isinstance(values[i], str), values[i]))
    remap = np.empty(max(len(values), 1), np.int64)
    remap[order] = np.arange(len(order))
    return [_label_name(values[i]) for i in order], remap[y] if len(y) else y


def _label_name(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _near(reader: Reader, clean, keep: np.ndarray, near_key, texts, y: np.ndarray,
          report: CleaningReport) -> np.ndarray:
    """Near-duplicate pairs among kept rows (indices into the kept rows), reported in details."""
    nd = clean.near_duplicates
    if not nd.enabled or reader.kind == "table":
        return np.empty((0, 2), dtype=np.int64)
    kidx = np.flatnonzero(keep)
    if reader.kind == "image":
        key, thumbs = near_key
        candidates = near_pairs_hash(key[kidx], nd.max_distance)
        pairs = confirm_by_pixels(candidates, thumbs[kidx], nd.max_pixel_diff)
        how = {"method": "average hash (64 bit), confirmed on 8x8 thumbnails",
               "max_distance": nd.max_distance, "max_pixel_diff": nd.max_pixel_diff,
               "hash_candidates": len(candidates)}
    else:
        pairs = near_pairs_text(texts[kidx], nd.threshold)
        how = {"method": "MinHash LSH, word 3-grams, 128 permutations", "threshold": nd.threshold}
    yk = y[kidx]
    report.details["near_duplicates"] = {
        **how, "pairs": len(pairs), "rows": int(len(np.unique(pairs))),
        "pairs_with_different_labels": int((yk[pairs[:, 0]] != yk[pairs[:, 1]]).sum()) if len(pairs) else 0,
        "dropped": bool(nd.drop)}
    return pairs


def _iter_batches(path: Path, rows: int):
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=rows)


def _features(batch, reader: Reader) -> np.ndarray:
    return np.column_stack([batch.column(n).to_numpy(zero_copy_only=False)
                            for n in reader.feature_names]).astype(np.float64)


def _new_normalizer(reader: Reader, pre: PreprocessConfig) -> Normalizer:
    kind = pre.normalize if reader.kind != "text" else "none"
    return Normalizer(kind, per=pre.per, image_shape=reader.image_shape)


def _pass2(reader: Reader, pre: PreprocessConfig, tmp: Path, dest: Path, final: np.ndarray,
           y: np.ndarray, names: list[str]) -> Normalizer:
    import pyarrow as pa
    import pyarrow.parquet as pq

    norm = _new_normalizer(reader, pre)
    fitted = False
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
            table = pa.table({**cols, LABEL: pa.array(lab[sel], pa.int64()),
                              SPLIT: pa.array(split[sel], pa.int8()), ROW: batch.column(ROW)})
            if reader.kind != "text":
                train = split[sel] == 0
                if train.any():
                    norm.partial_fit(_features(batch, reader)[train])
                    fitted = True
            if writer is None:
                writer = pq.ParquetWriter(part, table.schema, use_dictionary=[LABEL, SPLIT])
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if not fitted:
        norm.fit(np.zeros((1, len(reader.feature_names)))) if reader.kind != "text" else None
    if reader.kind == "text":
        norm.shift_, norm.scale_ = np.zeros(0, np.float32), np.zeros(0, np.float32)
    os.replace(part, dest)
    return norm


def _outliers(reader: Reader, pre: PreprocessConfig, path: Path, report: CleaningReport,
              norm: Normalizer) -> Normalizer:
    """Outliers of the training rows by train statistics; flag counts them, drop removes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg = pre.clean.outliers
    stats = RunningStats(len(reader.feature_names))
    for batch in _iter_batches(path, 100_000):
        train = batch.column(SPLIT).to_numpy() == 0
        stats.update(_features(batch, reader)[train], keep_sample=cfg.method == "iqr")
    report.details["outliers"] = {"method": cfg.method, "threshold": cfg.threshold,
                                  "action": cfg.action, "scope": "train split"}
    refit = _new_normalizer(reader, pre)
    part = path.with_name(f".{path.name}.tmp")
    writer = None
    try:
        for batch in _iter_batches(path, 100_000):
            x = _features(batch, reader)
            train = batch.column(SPLIT).to_numpy() == 0
            out = outlier_mask(x, stats, cfg) & train
            report.add("outlier", batch.column(ROW).to_numpy()[out], removed=cfg.action == "drop")
            if cfg.action == "drop":
                keep = np.flatnonzero(~out)
                batch = batch.take(pa.array(keep))
                if (train[keep]).any():
                    refit.partial_fit(x[keep][train[keep]])
                if writer is None:
                    writer = pq.ParquetWriter(part, batch.schema, use_dictionary=[LABEL, SPLIT])
                writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
    if cfg.action == "drop":
        os.replace(part, path)
        return refit
    return norm


def _write_meta(out: Path, cfg: DataConfig, pre: PreprocessConfig, reader: Reader,
                names: list[str], norm: Normalizer, report: CleaningReport, seed: int,
                stratified: bool) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(out / "clean.parquet", columns=[LABEL, SPLIT])
    lab, spl = t.column(LABEL).to_numpy(), t.column(SPLIT).to_numpy()
    counts = {s: np.bincount(lab[spl == i], minlength=len(names)).tolist() for i, s in enumerate(SPLITS)}
    sizes = {s: int(pc.sum(pc.equal(t.column(SPLIT), i)).as_py() or 0) for i, s in enumerate(SPLITS)}
    write_json(out / "split.json", {"column": SPLIT, "codes": {s: i for i, s in enumerate(SPLITS)},
                                    "rows": sizes, "seed": seed,
                                    "stratified": stratified})
    write_json(out / "normalizer.json", norm.state_dict())
    cleaning = report.to_dict(rows_out=len(lab))
    write_json(out / "cleaning.json", cleaning)
    info = {"source": cfg.source, "kind": reader.kind, "rows": len(lab),
            "features": len(reader.feature_names) if reader.kind != "text" else 0,
            "feature_names": reader.feature_names, "labels": names,
            "image_shape": reader.image_shape, "class_counts": counts,
            "stratified": stratified}
    write_json(out / "info.json", info)
    return {"sizes": sizes, "cleaning": cleaning, "info": info}
