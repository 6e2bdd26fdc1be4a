"""`text`: free text, one column, encoded the way its model family binds it (the data stage fits
nothing for text); training, evaluation, parity and the server all call the same torch-free
`encode`:

- a transformer binds its tokenizer (`bind_tokenizer`): token ids and attention mask through the
  one `TextEncoder`;
- a table's MLP binds the hashing encoder (`bind_hashing`): fastText's bag of hashed word
  uni- and bigrams (Joulin et al. 2017), up to `max_tokens` bucket ids per text, averaged as a
  learned embedding inside the network (`learned`), so a text column sits beside numbers and
  categories at the cost of a lookup.
"""

from __future__ import annotations

import re
import zlib
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
# The hashing encoder: bucket ids 1..BUCKETS-1 (0 pads), ids kept per text, embedding width.
BUCKETS, MAX_TOKENS, DIM = 1 << 15, 128, 32
_WORD = re.compile(r"\w+", re.UNICODE)


def hashed_ngrams(text: str, buckets: int, max_tokens: int) -> tuple[list[int], bool]:
    """(bucket ids of the text's lower-cased words and word bigrams, whether some were cut).
    crc32 is stable across processes and machines (Python's hash() is salted)."""
    words = _WORD.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    ids = [zlib.crc32(g.encode()) % (buckets - 1) + 1 for g in grams]
    return ids[:max_tokens], len(ids) > max_tokens


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

    def bind_hashing(self, buckets: int = BUCKETS, max_tokens: int = MAX_TOKENS,
                     dim: int = DIM) -> TextFeature:
        self.hashing_ = {"buckets": int(buckets), "max_tokens": int(max_tokens), "dim": int(dim)}
        return self

    @property
    def hashed(self) -> dict[str, int] | None:
        return getattr(self, "hashing_", None)

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
        return [self.tokenizer_] if hasattr(self, "tokenizer_") and not self.hashed else []

    def state_dict(self) -> dict[str, Any]:
        if self.hashed:
            return {"encoder": "hashing", **self.hashed}
        if not hasattr(self, "tokenizer_"):
            return {}
        return {"tokenizer": self.tokenizer_.name, "max_length": self.max_length_}

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> TextFeature:
        if state.get("encoder") == "hashing":
            self.bind_hashing(state["buckets"], state["max_tokens"], state["dim"])
        elif state:
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
        if self.hashed:
            return [spec(self.name, "INT64", [-1, self.hashed["max_tokens"]])]
        return [spec("input_ids", "INT64", [-1, -1]), spec("attention_mask", "INT64", [-1, -1])]

    def encode(self, values: np.ndarray) -> dict[str, np.ndarray]:
        texts = np.asarray(values, dtype=object).reshape(-1)
        if self.hashed:
            h = self.hashed
            ids = np.zeros((len(texts), h["max_tokens"]), np.int64)
            cut = np.zeros(len(texts), bool)
            for i, t in enumerate(texts):
                row, cut[i] = hashed_ngrams("" if t is None else str(t), h["buckets"],
                                            h["max_tokens"])
                ids[i, :len(row)] = row
            return {self.name: ids, TRUNCATED: cut}
        enc = self.encoder.encode([str(t) for t in texts])
        return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask,
                TRUNCATED: enc.truncated}

    def from_columns(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The text column; a missing text (null) is the empty text, not the word "None"."""
        col = super().from_columns(values)
        return np.array(["" if t is None else t for t in col], dtype=object)

    def form(self) -> dict[str, Any]:
        if self.hashed:
            return {"name": self.name, "type": self.type, "widget": "text",
                    "max_tokens": self.hashed["max_tokens"], "truncation": "right"}
        return {"name": self.name, "type": self.type, "widget": "text",
                "max_length": getattr(self, "max_length_", None), "truncation": "right",
                "tokenized_inputs": [s["name"] for s in self.graph_inputs()]}

    def sort_key(self, values: np.ndarray) -> np.ndarray | None:
        if self.hashed:
            return None  # every row costs max_tokens lookups
        return self.encoder.lengths([str(t) for t in values])

    continuous = False  # bucket ids

    def width(self) -> int:
        # a text family reads the packed tokens whole, not as vector columns
        return self.hashed["max_tokens"] if self.hashed else 0

    def module(self):
        from danlu.features.graph import AsIndex, PackTokens

        return AsIndex() if self.hashed else PackTokens()

    def learned(self):
        if not self.hashed:
            return None
        from danlu.features.graph import HashedBag

        return HashedBag(self.hashed["buckets"], self.hashed["dim"]), self.hashed["dim"]

    def examples(self, batch: Any) -> list[Any]:
        import torch

        if self.hashed:
            return [(torch.ones(2, self.hashed["max_tokens"], dtype=torch.int64), {0: batch})]

        # Sequence > 1 and batch >= 2, or the exporter specializes those axes (ENV.md).
        seq = torch.export.Dim("seq", min=1, max=max(self.max_length_, 16))
        ones = torch.ones(2, 8, dtype=torch.int64)
        return [(ones, {0: batch, 1: seq}), (ones.clone(), {0: batch, 1: seq})]
