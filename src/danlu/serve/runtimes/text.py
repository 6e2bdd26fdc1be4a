"""Raw text in front of any runtime: tokenize each joined batch once, then run the model."""

from __future__ import annotations

import numpy as np

from danlu.data.tokenize import TextEncoder
from danlu.serve.package import Package
from danlu.serve.runtimes.base import TRUNCATED, Runtime, RuntimeInputError

__all__ = ["TextRuntime"]


class TextRuntime(Runtime):
    """`text` strings -> TextEncoder (padded to the batch's longest) -> `inner` -> outputs.

    Runs in the batcher's worker thread after requests were joined, so a batch is tokenized
    in one `encode_batch` call and padded once; the attention mask keeps padding from
    changing any row's answer.
    """

    def __init__(self, package: Package, inner: Runtime):
        assert package.text is not None  # load_runtime wraps text packages only
        self.inner, self.inputs, self.outputs = inner, package.inputs, package.outputs
        self.text_input = package.inputs[0].name
        self.encoder = TextEncoder(package.dir / package.text.tokenizer, package.text.max_length)
        self.model_inputs = package.text.model_inputs

    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Tokenize, run the inner runtime, and add the per-row TRUNCATED flags."""
        texts = inputs[self.text_input].reshape(-1).tolist()
        if not texts:
            raise RuntimeInputError("no texts: send at least one string")
        encoded = self.encoder.encode(texts)
        arrays = encoded.arrays()
        result = self.inner.run({k: arrays[k] for k in self.model_inputs}, outputs)
        result[TRUNCATED] = encoded.truncated
        return result
