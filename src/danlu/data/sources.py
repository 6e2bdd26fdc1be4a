"""Data sources: scikit-learn's bundled sets and numeric CSV/Parquet files, read into arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from danlu.errors import DataError, RecipeError

__all__ = ["Table", "load_source"]


@dataclass
class Table:
    """Features (float32, one row per sample), integer labels and what they mean."""

    x: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    label_names: list[str]
    image_shape: list[int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def load_source(source: str, target: str | None = None,
                image_shape: list[int] | None = None) -> Table:
    """Read `sklearn:NAME`, `csv:PATH` or `parquet:PATH` into a Table."""
    kind, _, rest = source.partition(":")
    if kind == "sklearn":
        table = _sklearn(rest)
    elif kind in ("csv", "parquet"):
        table = _file(kind, Path(rest), target)
    else:
        raise RecipeError("data.source", got=source, expected="sklearn:NAME, csv:PATH or parquet:PATH")
    if image_shape is not None:
        table.image_shape = list(image_shape)
    if table.image_shape is not None and int(np.prod(table.image_shape)) != table.x.shape[1]:
        raise RecipeError("data.image_shape", got=table.image_shape,
                          expected=f"a shape whose product is the {table.x.shape[1]} features")
    if table.num_classes < 2:
        raise DataError(f"the target has {table.num_classes} class; classification needs 2 or more",
                        source=source)
    return table


def _sklearn(name: str) -> Table:
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "iris": datasets.load_iris,
              "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}.get(name)
    if loader is None:
        raise RecipeError("data.source", got=f"sklearn:{name}",
                          expected="sklearn:digits|iris|wine|breast_cancer")
    b = loader()
    names = [str(n) for n in b.target_names]
    return Table(x=np.asarray(b.data, dtype=np.float32), y=np.asarray(b.target, dtype=np.int64),
                 feature_names=[str(f) for f in b.feature_names], label_names=names,
                 image_shape=[1, 8, 8] if name == "digits" else None)


def _file(kind: str, path: Path, target: str | None) -> Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not path.is_file():
        raise RecipeError("data.source", got=f"{kind}:{path}", expected="an existing file")
    try:
        if kind == "csv":
            import pyarrow.csv as pacsv

            tbl = pacsv.read_csv(path)
        else:
            import pyarrow.parquet as pq

            tbl = pq.read_table(path)
    except pa.ArrowInvalid as e:
        raise DataError(f"cannot be read as {kind}: {e}", source=str(path)) from None
    if target not in tbl.column_names:
        raise RecipeError("data.target", got=target,
                          expected=f"a column of {path.name}: one of {', '.join(tbl.column_names)}")
    features = [c for c in tbl.column_names if c != target]
    if not features:
        raise DataError("no feature columns besides the target", source=str(path))
    cols = []
    for name in features:
        col = tbl.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type) or pa.types.is_null(col.type)):
            raise _first_non_numeric(col.to_pylist(), name, str(path))
        cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    x = np.stack(cols, axis=1) if cols else np.empty((tbl.num_rows, 0))
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"missing or non-finite value ({x[row, col]})", row=row + 1,
                        column=features[col], source=str(path))
    y_col = tbl.column(target)
    if y_col.null_count:
        row = int(pc.index(pc.is_null(y_col), True).as_py())
        raise DataError("missing label", row=row + 1, column=target, source=str(path))
    values = y_col.to_numpy(zero_copy_only=False)
    labels, y = np.unique(values, return_inverse=True)
    return Table(x=x.astype(np.float32), y=y.astype(np.int64), feature_names=features,
                 label_names=[_label_name(v) for v in labels])


def _label_name(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _first_non_numeric(values: list[object], column: str, source: str) -> DataError:
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return DataError(f"{v!r} is not a number (features must be numeric)", row=i + 1,
                             column=column, source=source)
    return DataError("column is not numeric", column=column, source=source)
