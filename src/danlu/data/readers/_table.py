"""What csv and parquet share: numeric columns through pyarrow, or one text and one label column.

The file format's own parts (the header, how rows are cut into chunks) live in csv.py and
parquet.py; a reader here is built by one of their openers, never by scheme name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers.base import Chunk, Issue, Reader
from danlu.errors import DataError, RecipeError

# A number as text (RE2 syntax, pyarrow's regex engine): what float() accepts, roughly.
_NUMERIC = r"(?i)^\s*[-+]?((\d+\.?\d*)|(\.\d+))(e[-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$"


class _File(Reader):
    """A csv/parquet file: the scheme it was named by and its column names."""

    scheme: str

    def _open(self, path: Path) -> list[str]:
        if not path.is_file():
            raise RecipeError("data.source", got=f"{self.scheme}:{path}", expected="an existing file")
        self.path = path
        import pyarrow as pa

        try:
            return self._header()
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
            raise DataError(f"cannot be read as {self.scheme}: {e}", source=str(path)) from None

    def _header(self) -> list[str]:
        raise NotImplementedError


class NumberTable(_File):
    """Features read as float64 in record batches; a cell that is not a number becomes an Issue."""

    def __init__(self, path: Path, target: str | None, chunk_rows: int, drop: list[str]):
        names = self.column_names = self._open(path)
        self.target, self.chunk_rows = target, chunk_rows
        self.label_values = []
        if target not in names:
            raise RecipeError("data.target", got=target,
                              expected=f"a column of {path.name}: one of {', '.join(names)}")
        unknown = [c for c in drop if c not in names]
        if unknown:
            raise RecipeError("data.drop", got=unknown[0],
                              expected=f"a column of {path.name}: one of {', '.join(names)}")
        self.feature_names = [c for c in names if c != target and c not in drop]
        if not self.feature_names:
            raise DataError("no feature columns besides the target", source=str(path))
        # Rows with the wrong number of columns (csv): (data-row number, text).
        self.bad_lines: list[tuple[int, str]] = []

    def _chunk(self, batch, rows: np.ndarray, as_text: bool) -> Chunk:
        import pyarrow as pa
        import pyarrow.compute as pc

        n = batch.num_rows
        issues: list[Issue] = []
        cols = []
        for name in self.feature_names:
            col = batch.column(name)
            if as_text or not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
                               or pa.types.is_boolean(col.type) or pa.types.is_null(col.type)):
                col = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
                blank = pc.equal(pc.utf8_trim_whitespace(col), "")
                ok = pc.or_(pc.match_substring_regex(col, _NUMERIC), blank)
                bad = ~np.asarray(ok.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
                if bad.any():
                    issues.append(Issue("wrong_type", bad, name, "not a number"))
                col = pc.if_else(ok.fill_null(True), col, pa.scalar(None, pa.string()))
                col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""),
                                 pa.scalar(None, pa.string()), col)
                col = col.cast(pa.float64())
            cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
        x = np.column_stack(cols) if cols else np.empty((n, 0))
        return Chunk(rows=rows, labels=self._arrow_codes(batch.column(self.target)), x=x,
                     issues=issues)


class TextTable(_File):
    """A text column (data.text_field) and a label column; row numbers count records."""

    kind = "text"

    def __init__(self, path: Path, target: str, text_field: str, chunk_rows: int):
        names = self._open(path)
        self.target, self.text_field, self.chunk_rows = target, text_field, chunk_rows
        self.feature_names, self.label_values = [text_field], []
        for key, col in (("data.text_field", text_field), ("data.target", target)):
            if col not in names:
                raise RecipeError(key, got=col,
                                  expected=f"a column of {path.name}: one of {', '.join(names)}")

    def chunks(self) -> Iterator[Chunk]:
        done = 0
        for texts, labels, malformed in self._records():
            n = len(texts)
            issues = ([Issue("malformed_line", malformed, "line", "wrong number of columns")]
                      if malformed.any() else [])
            yield Chunk(rows=np.arange(done + 1, done + n + 1), labels=self._codes(labels),
                        text=np.array(texts, dtype=object), issues=issues)
            done += n

    def _records(self) -> Iterator[tuple[list[str], list, np.ndarray]]:
        """(texts, label cells, malformed mask) per chunk."""
        raise NotImplementedError
