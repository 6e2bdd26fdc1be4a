"""tsv:PATH, tab-separated values: csv.py's reader with the delimiter fixed to a tab (the
byte-order mark, compression and quoting as there)."""

from __future__ import annotations

from pathlib import Path

from danlu.data.readers.base import Reader, ReaderOptions, schemes
from danlu.data.readers.csv import CsvReader

__all__ = ["TsvReader", "open_tsv"]


@schemes.register("tsv")
def open_tsv(rest: str, opts: ReaderOptions) -> Reader:
    return TsvReader(Path(rest), opts.target, opts.chunk_rows, list(opts.drop))


open_tsv.needs_target = True  # a table names its label column


class TsvReader(CsvReader):
    """A tab always: nothing to sniff."""

    scheme = "tsv"
    delimiter = "\t"
