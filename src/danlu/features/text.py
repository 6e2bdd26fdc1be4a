"""`text`: free text, one column. Tokenized by the one torch-free `TextEncoder` (training,
evaluation, parity and the server all call `encode`); the tokenizer is the model's (a model
family binds it: `bind_tokenizer`), so the data stage fits nothing for text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from danlu.data.readers import Issue
from danlu.features.base import NOTE, Feature, features, spec

__all__ = ["TRUNCATED", "TextFeature"]

# The per-row note of a text feature: True where the tokenizer cut the text to max_length.
TRUNCATED = f"{NOTE}truncated__"
# Texts longer than this (characters, on average) are free text rather than a category.
LONG_TEXT = 30


@features.register("text")
class TextFeature(Feature):
    type = "text"
    parse = "string"

    @classmethod
    def recognise(cls, column: Any) -> str | None:
        if not column.numeric and column.mean_length >= LONG_TEXT \
                and (column.many or column.distinct > column.present // 2):
            return f"free text ({column.describe()})"
        return None

    def invalid(self, values: np.ndarray, clean: Any) -> list[Issue]:
        empty = np.array([not (isinstance(t, str) and t.strip()) for t in values], dtype=bool)
        return [Issue("empty_text", empty, self.name)] if empty.any() else []

    def hashes(self, values: np.ndarray) -> np.ndarray:
        from danlu.data.dedup import text_hashes

        return text_hashes(values)

    def sketch(self, values: np.ndarray) -> tuple[np.ndarray, ...]:
        return (np.asarray(values, dtype=object),)

    def near_pairs(self, sketch: tuple[np.ndarray, ...], cfg: Any) -> tuple[np.ndarray, dict]:
        from danlu.data.dedup import near_pairs_text

        return near_pairs_text(sketch[0], cfg.threshold), {
            "method": "MinHash LSH, word 3-grams, 128 permutations", "threshold": cfg.threshold}

    # ---- the tokenizer: bound by the model family (e.g. the transformer's own) -------------
    def bind_tokenizer(self, tokenizer: str | Path, max_length: int) -> TextFeature:
        self.tokenizer_, self.max_length_ = Path(tokenizer), int(max_length)
        self._encoder = None
        return self

    def assets(self) -> list[Path]:
        return [self.tokenizer_] if hasattr(self, "tokenizer_") else []

    def state_dict(self) -> dict[str, Any]:
        if not hasattr(self, "tokenizer_"):
            return {}
        return {"tokenizer": self.tokenizer_.name, "max_length": self.max_length_}

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> TextFeature:
        if state:
            self.bind_tokenizer(Path(folder or ".") / state["tokenizer"], state["max_length"])
        return self

    @property
    def encoder(self):
        """The TextEncoder of the bound tokenizer (one per feature; thread-safe encode)."""
        if getattr(self, "_encoder", None) is None:
            if not hasattr(self, "tokenizer_"):
                from danlu.errors import DanluError

                raise DanluError(f"text feature {self.name!r} has no tokenizer: a text model "
                                 "family binds one (model.pretrained)")
            from danlu.data.tokenize import TextEncoder

            self._encoder = TextEncoder(self.tokenizer_, self.max_length_)
        return self._encoder

    # ---- encoding ------------------------------------------------------------------------
    def client_input(self):
        return spec(self.name, "BYTES", [-1])

    def graph_inputs(self):
        return [spec("input_ids", "INT64", [-1, -1]), spec("attention_mask", "INT64", [-1, -1])]

    def encode(self, values: np.ndarray) -> dict[str, np.ndarray]:
        enc = self.encoder.encode([str(t) for t in np.asarray(values, dtype=object).reshape(-1)])
        return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask,
                TRUNCATED: enc.truncated}

    def from_columns(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The text column; a missing text (null) is the empty text, not the word "None"."""
        col = super().from_columns(values)
        return np.array(["" if t is None else t for t in col], dtype=object)

    def form(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "widget": "text",
                "max_length": getattr(self, "max_length_", None), "truncation": "right",
                "tokenized_inputs": [s["name"] for s in self.graph_inputs()]}

    def sort_key(self, values: np.ndarray) -> np.ndarray:
        return self.encoder.lengths([str(t) for t in values])

    def width(self) -> int:
        return 0  # a text family reads the packed tokens whole, not as vector columns

    def module(self):
        from danlu.features.graph import PackTokens

        return PackTokens()

    def examples(self, batch: Any) -> list[Any]:
        import torch

        # Sequence > 1 and batch >= 2, or the exporter specializes those axes (ENV.md).
        seq = torch.export.Dim("seq", min=1, max=max(self.max_length_, 16))
        ones = torch.ones(2, 8, dtype=torch.int64)
        return [(ones, {0: batch, 1: seq}), (ones.clone(), {0: batch, 1: seq})]
