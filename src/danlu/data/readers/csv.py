"""csv:PATH, a header line then one row per line: numeric features, or a text column.

Numbers are parsed by pyarrow in blocks of whole lines that danlu cuts itself; a text column
(data.text_field) goes through Python's csv module, so quoted cells may hold commas and line
breaks (articles do).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers._table import NumberTable, TextTable
from danlu.data.readers.base import Chunk, Reader, ReaderOptions, label_cell, schemes

__all__ = ["CsvNumbers", "CsvText", "csv_blocks", "open_csv"]


@schemes.register("csv")
def open_csv(rest: str, opts: ReaderOptions) -> Reader:
    """A text source when data.text_field names a column, else numeric features."""
    if opts.text_field:
        return CsvText(Path(rest), opts.target or "label", opts.text_field, opts.chunk_rows)
    return CsvNumbers(Path(rest), opts.target, opts.chunk_rows, list(opts.drop))


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


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


class CsvNumbers(NumberTable):
    scheme = "csv"

    def _header(self) -> list[str]:
        return _csv_header(self.path)

    def chunks(self) -> Iterator[Chunk]:
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


class CsvText(TextTable):
    scheme = "csv"

    def _header(self) -> list[str]:
        return _csv_header(self.path)

    def _records(self) -> Iterator[tuple[list[str], list, np.ndarray]]:
        csv.field_size_limit(min(sys.maxsize, 1 << 30))  # long articles in one cell
        with self.path.open(newline="", encoding="utf-8") as f:
            rd = csv.reader(f)
            header = next(rd, [])
            ti, li = header.index(self.text_field), header.index(self.target)
            texts, labels, bad = [], [], []
            for rec in rd:
                ok = len(rec) == len(header)
                texts.append(rec[ti] if ok else "")
                labels.append(label_cell(rec[li]) if ok else None)
                bad.append(not ok)
                if len(texts) >= self.chunk_rows:
                    yield texts, labels, np.array(bad)
                    texts, labels, bad = [], [], []
            if texts:
                yield texts, labels, np.array(bad)
