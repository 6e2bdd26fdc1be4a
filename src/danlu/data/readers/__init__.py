"""Source readers, one module per scheme of `data.source`: rows arrive as Chunks in bounded memory.

`open_reader("csv:data.csv", target="label")` looks the scheme up in `schemes` (filled by each
module's `@schemes.register`) and returns a Reader; the data stage and `danlu evaluate --data`
both read through it, so every source is read by the same rules.
"""

from __future__ import annotations

# Importing a scheme's module registers it; the order is irrelevant (the registry sorts).
from danlu.data.readers import corpus, csv, folder, idx, jsonl, parquet, sklearn, tsv  # noqa: F401
from danlu.data.readers.base import Chunk, Issue, Reader, ReaderOptions, label_cell, label_name, schemes
from danlu.data.readers.corpus import CORPORA, CorpusReader, corpus_folder
from danlu.data.readers.csv import csv_blocks
from danlu.data.readers.folder import IMAGE_SUFFIXES

__all__ = ["CORPORA", "IMAGE_SUFFIXES", "Chunk", "CorpusReader", "Issue", "Reader",
           "ReaderOptions", "corpus_folder", "csv_blocks", "label_cell", "label_name",
           "open_reader", "schemes"]


def open_reader(source: str, target: str | None = None, chunk_rows: int = 100_000,
                drop: list[str] | None = None) -> Reader:
    """The reader for `SCHEME:REST` (e.g. `csv:PATH`, `sklearn:digits`)."""
    scheme, _, rest = source.partition(":")
    reader = schemes[scheme](rest, ReaderOptions(target, chunk_rows, tuple(drop or ())))
    reader.source = source
    return reader
