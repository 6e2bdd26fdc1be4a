"""idx:PATH, images in the IDX format of MNIST and Fashion-MNIST (LeCun et al. 1998): an images
file `...-images-idx3-ubyte[.gz]` with its labels file `...-labels-idx1-ubyte[.gz]` beside it,
or a folder: every such pair in it, in name order. Pixels stream in chunks; labels are small."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from danlu.data.readers.base import Chunk, Reader, ReaderOptions, schemes
from danlu.errors import DataError, RecipeError

__all__ = ["IdxReader", "open_idx", "read_header"]

# The IDX type byte -> numpy dtype (big-endian, as the format stores every value).
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@schemes.register("idx")
def open_idx(rest: str, opts: ReaderOptions) -> Reader:
    return IdxReader(Path(rest), opts.chunk_rows)


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_header(f: BinaryIO, path: Path) -> tuple[np.dtype, list[int]]:
    """(dtype, dims) from an IDX header: two zero bytes, the type byte, the number of dims, then
    each dim as a big-endian int32. A DataError for anything else."""
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _DTYPES:
        raise DataError(f"not an IDX file (its first bytes are {head!r}, expected "
                        "00 00, a type byte 08-0E and the number of dimensions)", source=str(path))
    return np.dtype(_DTYPES[head[2]]), np.frombuffer(f.read(4 * head[3]), ">i4").tolist()


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    """(images, labels) files: the labels file is the images file's name with
    images-idx3 -> labels-idx1."""
    images = sorted(root.glob("*images-idx3*")) if root.is_dir() else [root]
    if not images or not all(p.is_file() for p in images):
        raise RecipeError("data.source", got=f"idx:{root}",
                          expected="an IDX images file (train-images-idx3-ubyte[.gz]) or a folder "
                                   "holding one", hint="e.g. idx:/usr/share/datasets/fashion-mnist")
    pairs = [(p, p.with_name(p.name.replace("images-idx3", "labels-idx1"))) for p in images]
    for img, lab in pairs:
        if lab == img or not lab.is_file():
            raise RecipeError("data.source", got=f"idx:{img}",
                              expected=f"its labels file beside it: {lab.name}")
    return pairs


class IdxReader(Reader):
    """One image feature `pixels` [1, rows, cols]; labels are the sorted distinct label values."""

    fixed_labels = True

    def __init__(self, root: Path, chunk_rows: int):
        self.pairs, self.chunk_rows, labels, shapes = _pairs(root), chunk_rows, [], set()
        for img, lab in self.pairs:
            with _open(img) as f:
                _, dims = read_header(f, img)
            with _open(lab) as f:
                dtype, ldims = read_header(f, lab)
                y = np.frombuffer(f.read(), dtype)
            if len(dims) != 3 or ldims != dims[:1] or len(y) != dims[0]:
                raise DataError(f"{dims[0]} images of shape {dims[1:]} with {ldims} labels "
                                f"({len(y)} read) in {lab.name}; expected [n, rows, cols] images "
                                "and n labels", source=str(img))
            labels.append(y.astype(np.int64))
            shapes.add(tuple(dims[1:]))
        if len(shapes) > 1:
            raise DataError(f"images of different sizes {sorted(shapes)}", source=f"idx:{root}")
        self.labels = labels
        values = np.unique(np.concatenate(labels))
        self.label_values = [str(v) for v in values.tolist()]
        self._values = values
        self.image_shape = [1, *shapes.pop()]
        self.columns = [f"px{i}" for i in range(int(np.prod(self.image_shape)))]
        self.groups, self.shapes = {"pixels": self.columns}, {"pixels": self.image_shape}
        self.declared = {"pixels": "image"}

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
        size, start = len(self.columns), 0
        for (img, _), y in zip(self.pairs, self.labels, strict=True):
            with _open(img) as f:
                dtype, _ = read_header(f, img)
                for lo in range(0, len(y), self.chunk_rows):
                    n = min(self.chunk_rows, len(y) - lo)
                    x = np.frombuffer(f.read(n * size * dtype.itemsize), dtype)
                    if len(x) != n * size:
                        raise DataError(f"truncated after image {lo + len(x) // size} of "
                                        f"{len(y)}", source=str(img))
                    yield Chunk(rows=np.arange(start + lo + 1, start + lo + n + 1),
                                labels=np.searchsorted(self._values, y[lo:lo + n]),
                                columns={"pixels": x.reshape(n, size).astype(np.float64)})
            start += len(y)
