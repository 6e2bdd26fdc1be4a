"""What every source reader is: rows arrive as Chunks, so memory does not grow with rows.

A reader only parses: problems it meets while parsing (a wrong column count, a cell that is not
a number, an image of the wrong size) come back as Issues for `clean.py` to count or to stop on,
never as silently dropped rows. Each scheme of `data.source` (`csv:`, `jsonl:`, ...) is one
module of this package that registers an opener in `schemes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from danlu.registry import Registry

__all__ = ["Chunk", "Issue", "Opener", "Reader", "ReaderOptions", "label_cell", "label_name",
           "schemes"]


@dataclass
class Issue:
    """Rows of a chunk with one problem: mask over the chunk, and the column (one or per row)."""

    reason: str
    mask: np.ndarray
    column: str | np.ndarray
    detail: str = ""


@dataclass
class Chunk:
    rows: np.ndarray                  # 1-based row numbers in the source (data rows, header excluded)
    labels: np.ndarray                # int64 label codes (reader.label_values), -1 = missing
    x: np.ndarray | None = None       # float64 [n, features] for tables and images
    text: np.ndarray | None = None    # object array of str for text sources
    issues: list[Issue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


class Reader:
    """What every reader exposes: the data's shape, label values seen so far, and chunks."""

    kind: str = "table"               # table | image | text
    feature_names: list[str]
    image_shape: list[int] | None = None
    # Label values in first-seen order; Chunk.labels index into it. sklearn sets give names.
    label_values: list
    fixed_labels: bool = False        # True: label_values are final names in code order

    def chunks(self) -> Iterator[Chunk]:
        raise NotImplementedError

    def _codes(self, values: list) -> np.ndarray:
        """Label codes of `values` (None/NaN -> -1), new values appended to label_values."""
        index = getattr(self, "_index", None)
        if index is None:
            index = self._index = {}
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                out[i] = -1
                continue
            code = index.get(v)
            if code is None:
                code = index[v] = len(self.label_values)
                self.label_values.append(v)
            out[i] = code
        return out

    def _arrow_codes(self, col) -> np.ndarray:
        """Label codes of a pyarrow column, vectorized: map its few distinct values, then index."""
        import pyarrow.compute as pc

        uniques = pc.unique(col)
        codes = np.append(self._codes(uniques.to_pylist()), -1)
        pos = pc.index_in(col, value_set=uniques).fill_null(len(uniques)).to_numpy(zero_copy_only=False)
        out = codes[pos.astype(np.int64)]
        out[np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = -1
        return out


def label_cell(v: object) -> object:
    """A label cell: str/int as is, blank or missing -> None (counted as missing_label)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def label_name(v: object) -> str:
    """The name of a label value as danlu writes it: 3.0 -> '3', 'cat' -> 'cat'."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class ReaderOptions:
    """The `data` keys a reader may need besides the source (DataConfig's meanings)."""

    target: str | None = None         # label column/field (jsonl and text tables: default "label")
    text_field: str | None = None     # jsonl text field (default "text"); csv/parquet: a text source
    chunk_rows: int = 100_000
    drop: tuple[str, ...] = ()        # csv/parquet columns that are not features


# An opener takes what follows `scheme:` in data.source and the options, and returns the reader.
Opener = Callable[[str, ReaderOptions], Reader]
schemes: Registry[Opener] = Registry("source scheme", "data.source")
