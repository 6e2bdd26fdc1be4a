"""Chunked readers for every source kind: rows arrive as Chunks, so memory does not grow with rows.

csv/parquet stream through pyarrow; sklearn sets, image folders and JSON-lines files are read in
chunks too. A reader only parses: problems it meets while parsing (a wrong column count, a cell
that is not a number, an image of the wrong size) come back as Issues for `clean.py` to count or
to stop on, never as silently dropped rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from danlu.errors import DataError, RecipeError

__all__ = ["Chunk", "Issue", "Reader", "csv_blocks", "open_reader"]

# A number as text (RE2 syntax, pyarrow's regex engine): what float() accepts, roughly.
_NUMERIC = r"(?i)^\s*[-+]?((\d+\.?\d*)|(\.\d+))(e[-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity|nan)\s*$"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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


def open_reader(source: str, target: str | None = None, text_field: str | None = None,
                chunk_rows: int = 100_000, image_shape: list[int] | None = None,
                drop: list[str] | None = None) -> Reader:
    """The reader for `sklearn:NAME`, `csv:PATH`, `parquet:PATH`, `folder:PATH` or `jsonl:PATH`."""
    kind, _, rest = source.partition(":")
    if kind == "sklearn":
        reader: Reader = SklearnReader(rest)
    elif kind == "corpus":
        from danlu.data.text_sources import CorpusReader

        reader = CorpusReader(rest, chunk_rows)
    elif kind in ("csv", "parquet") and text_field:
        from danlu.data.text_sources import TableTextReader

        reader = TableTextReader(kind, Path(rest), target or "label", text_field, chunk_rows)
    elif kind in ("csv", "parquet"):
        reader = ArrowReader(kind, Path(rest), target, chunk_rows, drop or [])
    elif kind == "folder":
        reader = FolderReader(Path(rest), chunk_rows)
    elif kind == "jsonl":
        reader = JsonlReader(Path(rest), target or "label", text_field or "text", chunk_rows)
    else:
        raise RecipeError("data.source", got=source,
                          expected="sklearn:NAME, csv:PATH, parquet:PATH, folder:PATH or jsonl:PATH")
    if image_shape is not None and reader.kind != "text":
        if int(np.prod(image_shape)) != len(reader.feature_names):
            raise RecipeError("data.image_shape", got=image_shape, expected=f"a shape whose product "
                              f"is the {len(reader.feature_names)} features")
        reader.image_shape, reader.kind = list(image_shape), "image"
    return reader


def csv_blocks(path: Path, chunk_rows: int) -> Iterator[bytes]:
    """The file after its header in blocks of whole lines, ~chunk_rows lines each.

    We cut the blocks ourselves (pyarrow's streaming reader reads ahead of a slow consumer
    without bound: 620 MB of buffers for a 780 MB file here). A quoted cell holding a line
    break is not supported in csv sources.
    """
    with path.open("rb") as f:
        f.readline()
        sample = f.read(1 << 16)
        per_line = len(sample) / max(sample.count(b"\n"), 1)
        size = int(min(max(chunk_rows * per_line, 1 << 20), 1 << 26))
        block = sample
        while True:
            block += f.read(max(size - len(block), 0))
            if not block:
                return
            if not block.endswith(b"\n"):
                block += f.readline()
            yield block
            block = b""


class SklearnReader(Reader):
    def __init__(self, name: str):
        from danlu.data.sources import _sklearn

        t = _sklearn(name)
        self._x, self._y = t.x.astype(np.float64), t.y
        self.feature_names, self.label_values, self.fixed_labels = t.feature_names, t.label_names, True
        self.image_shape = t.image_shape
        self.kind = "image" if t.image_shape else "table"

    def chunks(self) -> Iterator[Chunk]:
        yield Chunk(rows=np.arange(1, len(self._y) + 1), labels=self._y.astype(np.int64), x=self._x)


class ArrowReader(Reader):
    """csv/parquet in record batches; features read as float64, a bad cell becomes an Issue."""

    def __init__(self, kind: str, path: Path, target: str | None, chunk_rows: int, drop: list[str]):
        if not path.is_file():
            raise RecipeError("data.source", got=f"{kind}:{path}", expected="an existing file")
        self.file_kind, self.path, self.target, self.chunk_rows = kind, path, target, chunk_rows
        self.label_values = []
        names = self.column_names = self._column_names()
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

    def _column_names(self) -> list[str]:
        import pyarrow as pa

        try:
            if self.file_kind == "parquet":
                import pyarrow.parquet as pq

                return pq.ParquetFile(self.path).schema_arrow.names
            import csv

            with self.path.open(newline="", encoding="utf-8") as f:
                return next(csv.reader(f), [])
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
            raise DataError(f"cannot be read as {self.file_kind}: {e}", source=str(self.path)) from None

    def chunks(self) -> Iterator[Chunk]:
        if self.file_kind == "parquet":
            import pyarrow.parquet as pq

            done = 0
            for batch in pq.ParquetFile(self.path, pre_buffer=False).iter_batches(
                    batch_size=self.chunk_rows, columns=[*self.feature_names, self.target]):
                yield self._chunk(batch, np.arange(done + 1, done + batch.num_rows + 1), False)
                done += batch.num_rows
            return
        lines_before = 0
        for block in csv_blocks(self.path, self.chunk_rows):
            table, as_text, bad = self._parse_block(block)
            # Data-row numbers of the parsed rows: the block's lines minus the skipped ones.
            good = np.arange(1, table.num_rows + 1)
            skipped = np.sort(np.array([b for b, _ in bad], dtype=np.int64))
            rows = lines_before + good + np.searchsorted(skipped - np.arange(len(skipped)), good,
                                                         side="right")
            self.bad_lines.extend((lines_before + b, t) for b, t in bad)
            lines_before += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            yield self._chunk(table, rows, as_text)

    def _parse_block(self, block: bytes):
        """(table, as_text, [(line in block, text)] of wrong-length lines) for one block."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        def parse(as_text: bool, threads: bool):
            bad: list[tuple[int, str]] = []

            def on_bad_row(row) -> str:
                bad.append((row.number, row.text))
                return "skip"

            types = {f: (pa.string() if as_text else pa.float64()) for f in self.feature_names}
            table = pacsv.read_csv(
                pa.BufferReader(block),
                read_options=pacsv.ReadOptions(column_names=self.column_names, use_threads=threads,
                                               block_size=len(block) + 1),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=[*self.feature_names, self.target]))
            return table, bad

        as_text = False
        try:
            table, bad = parse(False, threads=True)
        except pa.ArrowInvalid:
            as_text = True  # a cell is not a number: parse this block as text, cell by cell
            table, bad = parse(True, threads=True)
        if any(b is None for b, _ in bad):  # line numbers need the serial parser (rare)
            table, bad = parse(as_text, threads=False)
        return table, as_text, bad

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


class FolderReader(Reader):
    """folder:PATH/<class>/<image>: PNG/JPEG via Pillow; the first image fixes the shape."""

    kind = "image"

    def __init__(self, root: Path, chunk_rows: int):
        if not root.is_dir():
            raise RecipeError("data.source", got=f"folder:{root}",
                              expected="an existing folder with one sub-folder of images per class")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        self.files = [(p, c) for c in classes for p in sorted((root / c).iterdir())
                      if p.suffix.lower() in IMAGE_SUFFIXES]
        if not self.files:
            raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in sub-folders of {root}",
                            source=str(root))
        self.root, self.chunk_rows = root, chunk_rows
        self.label_values, self.fixed_labels = classes, True
        first = self._load(self.files[0][0])
        self.image_shape = [first.shape[0], first.shape[1], first.shape[2]]
        self.feature_names = [f"px{i}" for i in range(int(np.prod(self.image_shape)))]

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("L") if im.mode in ("L", "1", "P", "I;16", "LA") else im.convert("RGB")
            a = np.asarray(im, dtype=np.float64)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)

    def chunks(self) -> Iterator[Chunk]:
        classes = {c: i for i, c in enumerate(self.label_values)}
        size = int(np.prod(self.image_shape))
        for start in range(0, len(self.files), self.chunk_rows):
            part = self.files[start:start + self.chunk_rows]
            x = np.zeros((len(part), size))
            bad_shape, unreadable = np.zeros(len(part), bool), np.zeros(len(part), bool)
            names = np.array([str(p.relative_to(self.root)) for p, _ in part], dtype=object)
            for i, (path, _) in enumerate(part):
                try:
                    a = self._load(path)
                except OSError:
                    unreadable[i] = True
                    continue
                if list(a.shape) != self.image_shape:
                    bad_shape[i] = True
                    continue
                x[i] = a.ravel()
            issues = [Issue("unreadable_image", unreadable, names),
                      Issue("wrong_shape", bad_shape, names, f"expected {self.image_shape}")]
            yield Chunk(rows=np.arange(start + 1, start + len(part) + 1),
                        labels=np.array([classes[c] for _, c in part], dtype=np.int64), x=x,
                        issues=[i for i in issues if i.mask.any()])


class JsonlReader(Reader):
    """jsonl:PATH, one JSON object per line with a text field and a label field."""

    kind = "text"

    def __init__(self, path: Path, target: str, text_field: str, chunk_rows: int):
        if not path.is_file():
            raise RecipeError("data.source", got=f"jsonl:{path}", expected="an existing file")
        self.path, self.target, self.text_field, self.chunk_rows = path, target, text_field, chunk_rows
        self.feature_names, self.label_values = [text_field], []

    def chunks(self) -> Iterator[Chunk]:
        with self.path.open(encoding="utf-8") as f:
            buf: list[tuple[int, str]] = []
            for n, line in enumerate(f, start=1):
                buf.append((n, line))
                if len(buf) >= self.chunk_rows:
                    yield self._chunk(buf)
                    buf = []
            if buf:
                yield self._chunk(buf)

    def _chunk(self, lines: list[tuple[int, str]]) -> Chunk:
        texts, labels = [], []
        malformed = np.zeros(len(lines), bool)
        for i, (_, line) in enumerate(lines):
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError
            except ValueError:
                malformed[i], obj = True, {}
            t = obj.get(self.text_field)
            texts.append(t if isinstance(t, str) else "")
            lab = obj.get(self.target)
            labels.append(lab if isinstance(lab, (str, int)) and not isinstance(lab, bool) else None)
        issues = ([Issue("malformed_line", malformed, "line", "not a JSON object")]
                  if malformed.any() else [])
        return Chunk(rows=np.array([n for n, _ in lines]), labels=self._codes(labels),
                     text=np.array(texts, dtype=object), issues=issues)
