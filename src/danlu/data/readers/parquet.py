"""parquet:PATH in record batches (`ParquetFile.iter_batches` pre-buffers the whole file unless
`pre_buffer=False`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers._table import Table
from danlu.data.readers.base import Chunk, Reader, ReaderOptions, schemes

__all__ = ["ParquetReader", "open_parquet"]


@schemes.register("parquet")
def open_parquet(rest: str, opts: ReaderOptions) -> Reader:
    return ParquetReader(Path(rest), opts.target, opts.chunk_rows, list(opts.drop))


open_parquet.needs_target = True  # a table names its label column



class ParquetReader(Table):
    scheme = "parquet"

    def _header(self) -> list[str]:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path).schema_arrow.names

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        parse = self._parse(parse)
        done = 0
        for batch in pq.ParquetFile(self.path, pre_buffer=False).iter_batches(
                batch_size=self.chunk_rows, columns=[*parse, self.target]):
            yield self._chunk(batch, np.arange(done + 1, done + batch.num_rows + 1), parse)
            done += batch.num_rows
