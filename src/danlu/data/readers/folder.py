"""folder:PATH/<class>/<image>, PNG/JPEG/BMP/GIF via Pillow; the first image fixes the shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from danlu.data.readers.base import Chunk, Issue, Reader, ReaderOptions, schemes
from danlu.errors import DataError, RecipeError

__all__ = ["IMAGE_SUFFIXES", "FolderReader", "open_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@schemes.register("folder")
def open_folder(rest: str, opts: ReaderOptions) -> Reader:
    return FolderReader(Path(rest), opts.chunk_rows)


class FolderReader(Reader):
    """Class names are the sorted sub-folders; greyscale -> 1 channel, otherwise RGB."""

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
        self.columns = [f"px{i}" for i in range(int(np.prod(self.image_shape)))]
        self.groups, self.shapes = {"pixels": self.columns}, {"pixels": self.image_shape}
        self.declared = {"pixels": "image"}

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("L") if im.mode in ("L", "1", "P", "I;16", "LA") else im.convert("RGB")
            a = np.asarray(im, dtype=np.float64)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
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
                        labels=np.array([classes[c] for _, c in part], dtype=np.int64),
                        columns={"pixels": x},
                        issues=[i for i in issues if i.mask.any()])
