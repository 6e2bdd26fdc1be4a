"""sklearn:NAME, a set bundled with scikit-learn (no download), read in one chunk."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from danlu.data.readers.base import Chunk, Reader, ReaderOptions, schemes
from danlu.errors import RecipeError

__all__ = ["SKLEARN_SETS", "SklearnReader", "open_sklearn"]

SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


@schemes.register("sklearn")
def open_sklearn(rest: str, opts: ReaderOptions) -> Reader:
    return SklearnReader(rest)


open_sklearn.names = SKLEARN_SETS  # what a recipe may name


class SklearnReader(Reader):
    """The whole set as one chunk, with the set's own label names; digits are [1, 8, 8] images."""

    fixed_labels = True

    def __init__(self, name: str):
        from sklearn import datasets

        if name not in SKLEARN_SETS:
            raise RecipeError("data.source", got=f"sklearn:{name}",
                              expected="sklearn:digits|iris|wine|breast_cancer")
        b = getattr(datasets, f"load_{name}")()
        # Through float32 first: the rows (and so their duplicate hashes) the data stage has
        # always seen.
        self._x = np.asarray(b.data, dtype=np.float32).astype(np.float64)
        self._y = np.asarray(b.target, dtype=np.int64)
        self.columns = [str(f) for f in b.feature_names]
        self.label_values = [str(n) for n in b.target_names]
        if name == "digits":  # 8x8 grey images: one `pixels` feature
            self.groups, self.shapes = {"pixels": self.columns}, {"pixels": [1, 8, 8]}
            self.declared = {"pixels": "image"}
        else:
            self.declared = {c: "number" for c in self.columns}

    def chunks(self, parse: dict[str, str] | None = None) -> Iterator[Chunk]:
        cols = {c: self._x[:, j] for j, c in enumerate(self.columns)}
        if self.groups:
            cols = {"pixels": self._x}
        yield Chunk(rows=np.arange(1, len(self._y) + 1), labels=self._y.copy(), columns=cols)
