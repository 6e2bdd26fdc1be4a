"""parquet:PATH in record batches: numeric features, or a text column (data.text_field).

`ParquetFile.iter_batches` pre-buffers the whole file unless `pre_buffer=False`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers._table import NumberTable, TextTable
from danlu.data.readers.base import Chunk, Reader, ReaderOptions, label_cell, schemes

__all__ = ["ParquetNumbers", "ParquetText", "open_parquet"]


@schemes.register("parquet")
def open_parquet(rest: str, opts: ReaderOptions) -> Reader:
    """A text source when data.text_field names a column, else numeric features."""
    if opts.text_field:
        return ParquetText(Path(rest), opts.target or "label", opts.text_field, opts.chunk_rows)
    return ParquetNumbers(Path(rest), opts.target, opts.chunk_rows, list(opts.drop))


def _batches(path: Path, chunk_rows: int, columns: list[str]):
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=chunk_rows,
                                                                columns=columns)


def _parquet_header(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).schema_arrow.names


class ParquetNumbers(NumberTable):
    scheme = "parquet"

    def _header(self) -> list[str]:
        return _parquet_header(self.path)

    def chunks(self) -> Iterator[Chunk]:
        done = 0
        for batch in _batches(self.path, self.chunk_rows, [*self.feature_names, self.target]):
            yield self._chunk(batch, np.arange(done + 1, done + batch.num_rows + 1), False)
            done += batch.num_rows


class ParquetText(TextTable):
    scheme = "parquet"

    def _header(self) -> list[str]:
        return _parquet_header(self.path)

    def _records(self) -> Iterator[tuple[list[str], list, np.ndarray]]:
        for b in _batches(self.path, self.chunk_rows, [self.text_field, self.target]):
            texts = [t if isinstance(t, str) else "" for t in b.column(0).to_pylist()]
            labels = [label_cell(v) for v in b.column(1).to_pylist()]
            yield texts, labels, np.zeros(len(texts), bool)
