"""`binary`: a column of exactly two values written as text (yes/no, Y/N, True/False, M/F). As an
input: the pair fitted on the training split, sorted; the torch-free encoder writes 0.0 for the
first value, 1.0 for the second and 0.5 for a missing cell or a value not in the pair (counted as
unseen, never an error); the graph takes that one FP32 column as the network's input column.

Why 0.5 and no indicator: "neither" sits halfway, so a linear layer sees no direction for it and
a ReLU network can still tell it apart (it is no row's real value); one column, where a
`category` with `__missing__` and `__unknown__` would be four one-hot columns. Numbers 0/1 stay
`number` (recognised first): already the ideal encoding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.features.base import Feature, features, spec
from danlu.features.category import MISSING, CategoryFeature, _key

__all__ = ["NEITHER", "BinaryFeature"]

# The input value of a missing cell, or a value that is not one of the pair.
NEITHER = 0.5


@features.register("binary")
class BinaryFeature(Feature):
    type = "binary"
    parse = "string"
    tabular = True
    continuous = False  # 0 / 0.5 / 1 are codes: noise and mixup would make values no row has

    @classmethod
    def recognise(cls, column: Any) -> str | None:
        if not column.numeric and column.distinct == 2:
            return f"two values ({column.describe()})"
        return None

    # rows hash by their vocabulary key, and a client sends strings, as for a category
    hashes = CategoryFeature.hashes
    client_input = CategoryFeature.client_input

    def partial_fit(self, values: np.ndarray) -> BinaryFeature:
        """Collect the training split's values; a third value is a DataError naming the fix."""
        seen = self.__dict__.setdefault("seen_", set())
        seen.update(k for k in map(_key, np.asarray(values, dtype=object).reshape(-1))
                    if k != MISSING)
        if len(seen) > 2:
            from danlu.errors import DataError

            shown = ", ".join(repr(v) for v in sorted(seen)[:5])
            raise DataError(f"{len(seen)} distinct values in the training split ({shown}"
                            f"{', ...' if len(seen) > 5 else ''}): a binary feature takes two; "
                            f"declare it `{self.columns[0]}: category`", column=self.columns[0])
        self._pair = None
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"values": sorted(getattr(self, "seen_", ()))}

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> BinaryFeature:
        self.seen_, self._pair = set(state["values"]), None
        return self

    @property
    def pair(self) -> dict[str, float]:
        """{value: its input}: the first of the sorted pair 0.0, the second 1.0."""
        p = getattr(self, "_pair", None)
        if p is None:
            p = self._pair = {k: float(i) for i, k in enumerate(self.state_dict()["values"])}
        return p

    def graph_inputs(self):
        return [spec(self.name, "FP32", [-1])]

    def encode(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """0.0 / 1.0 for the pair's values, NEITHER (0.5) for a missing or unseen one."""
        pair = self.pair
        flat = np.asarray(values, dtype=object).reshape(-1)
        return {self.name: np.fromiter((pair.get(_key(v), NEITHER) for v in flat), np.float32,
                                       len(flat))}

    def unseen(self, values: np.ndarray) -> int:
        """Values present but not one of the pair (a missing cell is not unseen)."""
        pair = self.pair
        return sum(1 for v in np.asarray(values, dtype=object).reshape(-1)
                   if (k := _key(v)) != MISSING and k not in pair)

    def table_columns(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """0/1, missing and unseen as NaN (trees send them to the side that fits best)."""
        x = self.encode(values)[self.name].astype(np.float64)
        x[x == NEITHER] = np.nan
        return x[:, None], 0

    def width(self) -> int:
        return 1

    def form(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "widget": "choice",
                "choices": list(self.pair)}

    def module(self):
        from danlu.features.graph import AsColumn

        return AsColumn()

    def examples(self, batch: Any) -> list[Any]:
        import torch

        return [(torch.zeros(2), {0: batch})]
