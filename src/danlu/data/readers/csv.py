"""csv:PATH, a header line then one row per line.

Numeric columns are parsed by pyarrow in blocks of whole lines that danlu cuts itself (fast, and
memory bounded). When a feature reads strings (a category, a text), the file goes through
Python's csv module instead, so quoted cells may hold commas and line breaks (articles do); row
numbers then count records.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers._table import Table
from danlu.data.readers.base import Chunk, Reader, ReaderOptions, schemes

__all__ = ["CsvReader", "csv_blocks", "open_csv"]


@schemes.register("csv")
def open_csv(rest: str, opts: ReaderOptions) -> Reader:
    return CsvReader(Path(rest), opts.target, opts.chunk_rows, list(opts.drop))


open_csv.needs_target = True  # a table names its label column



def csv_blocks(path: Path, chunk_rows: int) -> Iterator[bytes]:
    """The file after its header in blocks of whole lines, ~chunk_rows lines each.

    We cut the blocks ourselves (pyarrow's streaming reader reads ahead of a slow consumer
    without bound: 620 MB of buffers for a 780 MB file here). A quoted cell holding a line
    break is not supported by this path (the string path reads records).
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


class CsvReader(Table):
    scheme = "csv"

    def _header(self) -> list[str]:
        with self.path.open(newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
        parse = self._parse(parse)
        if "string" in parse.values():
            yield from self._records(parse)
            return
        lines_before = 0
        for block in csv_blocks(self.path, self.chunk_rows):
            table, bad = self._parse_block(block, list(parse))
            # Data-row numbers of the parsed rows: the block's lines minus the skipped ones.
            good = np.arange(1, table.num_rows + 1)
            skipped = np.sort(np.array([b for b, _ in bad], dtype=np.int64))
            rows = lines_before + good + np.searchsorted(skipped - np.arange(len(skipped)), good,
                                                         side="right")
            self.bad_lines.extend((lines_before + b, t) for b, t in bad)
            lines_before += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            yield self._chunk(table, rows, parse)

    def _parse_block(self, block: bytes, features: list[str]):
        """(table, [(line in block, text)] of wrong-length lines) for one block: floats where
        every cell parses, else the block as text (checked cell by cell in `_chunk`)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        def parse(as_text: bool, threads: bool):
            bad: list[tuple[int, str]] = []

            def on_bad_row(row) -> str:
                bad.append((row.number, row.text))
                return "skip"

            types = {f: (pa.string() if as_text else pa.float64()) for f in features}
            table = pacsv.read_csv(
                pa.BufferReader(block),
                read_options=pacsv.ReadOptions(column_names=self.column_names, use_threads=threads,
                                               block_size=len(block) + 1),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=[*features, self.target]))
            return table, bad

        as_text = False
        try:
            table, bad = parse(False, threads=True)
        except pa.ArrowInvalid:
            as_text = True  # a cell is not a number: parse this block as text, cell by cell
            table, bad = parse(True, threads=True)
        if any(b is None for b, _ in bad):  # line numbers need the serial parser (rare)
            table, bad = parse(as_text, threads=False)
        return table, bad

    def _records(self, parse: dict[str, str]) -> Iterator[Chunk]:
        """Records through Python's csv module (quoted line breaks), chunk_rows at a time."""
        import pyarrow as pa

        csv.field_size_limit(min(sys.maxsize, 1 << 30))  # long articles in one cell
        names = [*parse, self.target]
        with self.path.open(newline="", encoding="utf-8") as f:
            rd = csv.reader(f)
            header = next(rd, [])
            at = [header.index(c) for c in names]
            buf: list[list] = []
            done = 0
            for n, rec in enumerate(rd, start=1):
                if len(rec) != len(header):
                    self.bad_lines.append((n, ",".join(rec)))
                    continue
                buf.append([n, *(rec[i] for i in at)])
                if len(buf) >= self.chunk_rows:
                    yield self._rows_chunk(buf, names, parse, pa)
                    done += len(buf)
                    buf = []
            if buf:
                yield self._rows_chunk(buf, names, parse, pa)

    def _rows_chunk(self, buf: list[list], names: list[str], parse: dict[str, str], pa) -> Chunk:
        rows = np.array([r[0] for r in buf], dtype=np.int64)
        table = pa.table({c: pa.array([r[j + 1] for r in buf], pa.string())
                          for j, c in enumerate(names)})
        return self._chunk(table, rows, parse)
