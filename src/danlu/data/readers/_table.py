"""What csv and parquet share: the column names, and turning parsed cells into the columns the
features asked for — floats (a cell that is not a number becomes an Issue; a missing token such
as "", NA, N/A, null, ? becomes NaN) or strings (None where missing).

The file format's own parts (the header, how rows are cut into chunks) live in csv.py and
parquet.py; a reader here is built by one of their openers, never by scheme name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.readers.base import Chunk, Issue, Reader, check_file
from danlu.errors import DataError, RecipeError

# A number as text (RE2 syntax, pyarrow's regex engine): what float() accepts, roughly.
_NUMERIC = r"(?i)^\s*[-+]?((\d+\.?\d*)|(\.\d+))(e[-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$"
# Cells that mean "no value" (pandas' and R's spellings), case-insensitive, trimmed.
_MISSING = r"(?i)^\s*(|na|n/a|nan|null|none|\?|-|#n/a)\s*$"


class Table(Reader):
    """A csv/parquet file: the target, the feature columns (every other one not dropped)."""

    scheme: str

    def __init__(self, path: Path, target: str | None, chunk_rows: int, drop: list[str]):
        check_file(path, self.scheme)
        self.path, self.target, self.chunk_rows = path, target, chunk_rows
        import pyarrow as pa

        try:
            names = self.column_names = self._header()
        except UnicodeDecodeError as e:
            raise self._not_utf8(e) from None
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"cannot be read as {self.scheme}: {e}", source=f"{self.scheme}:{path}") from None
        if not names:
            raise DataError("the file is empty (0 bytes): write a header line naming the columns, "
                            "then one row per line" if path.stat().st_size == 0 else
                            "the file has no header line: its first line must name the columns",
                            source=f"{self.scheme}:{path}")
        self.label_values: list = []
        self.bad_lines: list[tuple[int, str]] = []
        if target not in names:
            hint = self._one_column_hint(names[0]) if len(names) == 1 else None
            raise RecipeError("data.target", got=target, expected=f"a column of {path.name}: "
                              f"{_one_of(names)}", hint=hint or _did_you_mean(target, names))
        unknown = [c for c in drop if c not in names]
        if unknown:
            raise RecipeError("data.drop", got=unknown[0], expected=f"a column of {path.name}: "
                              f"{_one_of(names)}", hint=_did_you_mean(unknown[0], names))
        self.columns = [c for c in names if c != target and c not in drop]
        if not self.columns:
            raise DataError(f"no feature columns besides the target {target!r}: the file needs "
                            "at least one more column", source=f"{self.scheme}:{path}")

    def _one_column_hint(self, name: str) -> str | None:
        """Why a file may read as one column (a csv: an unexpected delimiter)."""
        return None

    def _not_utf8(self, e: Exception) -> DataError:
        """The error for a file that is not text: binary, or another encoding than UTF-8."""
        what = "not UTF-8"
        if isinstance(e, UnicodeDecodeError):
            utf16 = e.start == 0 and e.object[:2] in (b"\xff\xfe", b"\xfe\xff")
            what = ("UTF-16, a spreadsheet's 'Unicode Text'" if utf16 else
                    f"byte 0x{e.object[e.start]:02x} is not UTF-8")
        return DataError(f"not UTF-8 text ({what}): a binary file, or text in another encoding; "
                         "save it as UTF-8 (a spreadsheet's 'CSV UTF-8')",
                         source=f"{self.scheme}:{self.path}")

    def _header(self) -> list[str]:
        raise NotImplementedError

    def _parse(self, parse: dict[str, str] | None) -> dict[str, str]:
        """The asked columns and their parse, in file order (None: every column as floats)."""
        if parse is None:
            return {c: "float" for c in self.columns}
        return {c: parse[c] for c in self.columns if c in parse}

    def _chunk(self, batch: Any, rows: np.ndarray, parse: dict[str, str]) -> Chunk:
        import pyarrow as pa
        import pyarrow.compute as pc

        issues: list[Issue] = []
        cols: dict[str, np.ndarray] = {}
        for name, how in parse.items():
            col = batch.column(name)
            if how == "string":
                cols[name] = _strings(col)
                continue
            if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
                    or pa.types.is_boolean(col.type) or pa.types.is_null(col.type)):
                col = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
                missing = pc.match_substring_regex(col, _MISSING)
                ok = pc.or_(pc.match_substring_regex(col, _NUMERIC), missing)
                bad = ~np.asarray(ok.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
                if bad.any():
                    issues.append(Issue("wrong_type", bad, name, "not a number"))
                keep = pc.and_(ok.fill_null(True), pc.invert(missing.fill_null(True)))
                col = pc.if_else(keep, col, pa.scalar(None, pa.string())).cast(pa.float64())
            cols[name] = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return Chunk(rows=rows, labels=self._arrow_codes(batch.column(self.target)), columns=cols,
                     issues=issues)


def _one_of(names: list[str], most: int = 30, chars: int = 400) -> str:
    text = ", ".join(names[:most])
    if len(text) > chars or len(names) > most:
        text = f"{text[:chars]}... ({len(names)} columns)"
    return "one of " + text


def _did_you_mean(word: str | None, names: list[str]) -> str | None:
    """The column names closest to `word` (case and spacing ignored first), or None."""
    import difflib

    if word is None:
        return None
    fold = {n.strip().lower(): n for n in names}
    close = ([fold[word.strip().lower()]] if word.strip().lower() in fold else
             difflib.get_close_matches(word, names, n=3, cutoff=0.5))
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None


def _strings(col: Any) -> np.ndarray:
    """A pyarrow column as an object array of str, None where missing (3.0 -> "3")."""
    out = np.empty(len(col), dtype=object)
    for i, v in enumerate(col.to_pylist()):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        out[i] = None if v is None else str(v)
    return out
