"""Raw client values in front of any runtime: each feature's torch-free `encode` (a text's tokens,
a category's index, numbers as float32) runs once per joined batch, then the engine."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.errors import DanluError
from danlu.features.base import NOTE
from danlu.serve.package import DATATYPES, MANIFEST, Package
from danlu.serve.runtimes.base import Runtime, RuntimeInputError

__all__ = ["EncodingRuntime"]


class EncodingRuntime(Runtime):
    """Client inputs (one per feature) -> the features' `encode` -> `inner` -> outputs.

    Runs in the batcher's worker thread after requests were joined, so a batch of texts is
    tokenized in one call and padded once (the attention mask keeps padding from changing any
    row's answer). Per-row notes of an encoding (NOTE-prefixed, e.g. which texts were cut)
    ride along with the outputs until a protocol reports them."""

    def __init__(self, package: Package, inner: Runtime):
        self.inner, self.features = inner, package.features
        self.inputs, self.outputs = package.inputs, package.outputs
        for i, f in enumerate(self.features):  # e.g. a text's tokenizer, loaded now
            try:
                f.encode(_one_row(f.client_input()))
            except Exception as e:  # a package that cannot encode fails at load, not per request
                raise DanluError(f"{package.dir / MANIFEST}: features[{i}] ({f.name!r}) cannot "
                                 f"encode a value: {e}") from e

    def encode(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray],
                                                             dict[str, np.ndarray]]:
        """(graph inputs for `inner`, per-row notes) of one batch of client inputs."""
        feed: dict[str, np.ndarray] = {}
        notes: dict[str, np.ndarray] = {}
        for f in self.features:
            values = inputs[f.name]
            if values.size == 0:
                raise RuntimeInputError(f"input {f.name!r}: no rows; send at least one")
            for k, v in f.encode(values).items():
                (notes if k.startswith(NOTE) else feed)[k] = v
        return feed, notes

    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        feed, notes = self.encode(inputs)
        result = self.inner.run(feed, outputs)
        result.update(notes)
        return result

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


def _one_row(spec: dict[str, Any]) -> np.ndarray:
    """One row of what a client sends for a feature: an "a" per string, zeros otherwise."""
    shape = [1 if d == -1 else d for d in spec["shape"]]
    if spec["datatype"] == "BYTES":
        return np.full(shape, "a", dtype=object)
    return np.zeros(shape, DATATYPES[spec["datatype"]])
