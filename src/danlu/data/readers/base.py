"""What every source reader is: rows arrive as Chunks, so memory does not grow with rows.

A reader only parses: problems it meets while parsing (a wrong column count, a cell that is not
a number, an image of the wrong size) come back as Issues for `clean.py` to count or to stop on,
never as silently dropped rows. Each scheme of `data.source` (`csv:`, `jsonl:`, ...) is one
module of this package that registers an opener in `schemes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from danlu.errors import RecipeError
from danlu.registry import Registry

__all__ = ["MISSING_TOKENS", "Chunk", "Issue", "Opener", "Reader", "ReaderOptions", "check_file",
           "label_cell", "label_name", "schemes"]


# Cells that mean "no value" (pandas' and R's usual spellings), lower-cased and trimmed: NaN in
# a number column (readers/_table.py's _MISSING says the same), `__missing__` in a category.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"})


@dataclass
class Issue:
    """Rows of a chunk with one problem: mask over the chunk, and the column (one or per row)."""

    reason: str
    mask: np.ndarray
    column: str | np.ndarray
    detail: str = ""
    # False: the rows are only counted (cleaning.json `flagged`), kept: e.g. a cell that is not
    # a number in a column that imputes missing values.
    removes: bool = True


@dataclass
class Chunk:
    rows: np.ndarray                  # 1-based row numbers in the source (data rows, header excluded)
    labels: np.ndarray                # int64 label codes (reader.label_values), -1 = missing
    # column -> values: float64 [n] ("float" parse), object [n] of str/None ("string"), or a
    # column group's float64 [n, k] (an image's pixels) under the group's name.
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


class Reader:
    """What every reader exposes: its columns, what it knows of their types, label values seen
    so far, and chunks parsed as the features ask (`parse`: column -> "float" | "string")."""

    source: str = ""
    target: str | None = None         # the label column or field (None: the source knows)
    columns: list[str]                # feature columns in source order (not target, not dropped)
    # A name for several columns read as one [n, k] array (an image's pixels), and its shape.
    groups: dict[str, list[str]] = {}
    shapes: dict[str, list[int]] = {}
    # The source's own features when a recipe declares none (name -> feature type or entry).
    declared: dict[str, Any] = {}
    # Label values in first-seen order; Chunk.labels index into it. sklearn sets give names.
    label_values: list
    fixed_labels: bool = False        # True: label_values are final names in code order
    # csv rows with the wrong number of cells, (data-row number, text), found while reading.
    bad_lines: list[tuple[int, str]] = []

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
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
        import pyarrow as pa
        import pyarrow.compute as pc

        if pa.types.is_string(col.type):  # a blank label is a missing one
            col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""),
                             pa.scalar(None, pa.string()), col)
        uniques = pc.unique(col)
        codes = np.append(self._codes(uniques.to_pylist()), -1)
        pos = pc.index_in(col, value_set=uniques).fill_null(len(uniques)).to_numpy(zero_copy_only=False)
        out = codes[pos.astype(np.int64)]
        out[np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = -1
        return out


def check_file(path: Path, scheme: str) -> None:
    """A RecipeError naming the fix when `path` is not a file that exists."""
    if path.is_dir():
        raise RecipeError("data.source", got=f"{scheme}:{path}", expected="a file, not a folder",
                          hint=f"name a file inside it, e.g. {scheme}:{path / ('data.' + scheme)}")
    if not path.is_file():
        raise RecipeError("data.source", got=f"{scheme}:{path}", expected="an existing file",
                          hint=f"there is no {path.resolve()}; a relative path is read from the "
                               "working folder")


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

    target: str | None = None         # label column/field (jsonl: default "label")
    chunk_rows: int = 100_000
    drop: tuple[str, ...] = ()        # columns that are not features


# An opener takes what follows `scheme:` in data.source and the options, and returns the reader.
Opener = Callable[[str, ReaderOptions], Reader]
schemes: Registry[Opener] = Registry("source scheme", "data.source")
