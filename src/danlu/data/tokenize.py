"""Text -> token ids, the same way in training, evaluation, export and the server (no torch).

One `TextEncoder` wraps a Hugging Face `tokenizers` tokenizer.json: it truncates each text to
`max_length` tokens (and says which texts it cut), and pads each batch only to its longest
member, so a batch of short texts costs short sequences. The server imports this module, so it
must never import torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from danlu.errors import DanluError

__all__ = ["Encoded", "TextEncoder"]


@dataclass(frozen=True)
class Encoded:
    """One padded batch: int64 `input_ids` and `attention_mask` of shape [B, longest], the true
    lengths, and which texts were cut to `max_length`."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    lengths: np.ndarray
    truncated: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The model's inputs by name, as the ONNX graph and the torch runtime take them."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


class TextEncoder:
    """tokenizer.json + max_length -> `Encoded` batches. Thread-safe for `encode` calls."""

    def __init__(self, tokenizer_json: str | Path, max_length: int = 128) -> None:
        from tokenizers import Tokenizer

        path = Path(tokenizer_json)
        if not path.is_file():
            raise DanluError(f"{path}: no tokenizer.json there; a text model needs the tokenizer "
                             "of its pretrained folder")
        if max_length < 2:
            raise DanluError(f"max_length {max_length}: must be at least 2 (room for [CLS] and [SEP])")
        self.path, self.max_length = path, int(max_length)
        self.tokenizer = Tokenizer.from_file(str(path))
        # The file may pin padding to a fixed length (MiniLM's pads to 128): padding is done
        # here, per batch, so turn the tokenizer's own off; truncation is set to ours.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.pad_id = _pad_id(path, self.tokenizer)

    @classmethod
    def from_folder(cls, folder: str | Path, max_length: int = 128) -> TextEncoder:
        """The encoder of a Hugging Face model folder (or a danlu text package)."""
        return cls(Path(folder) / "tokenizer.json", max_length)

    def encode(self, texts: list[str]) -> Encoded:
        """Tokenize `texts` (one batch, in parallel inside `tokenizers`), pad to the longest."""
        if not texts:
            empty = np.zeros((0, 0), np.int64)
            return Encoded(empty, empty.copy(), np.zeros(0, np.int64), np.zeros(0, bool))
        encs = self.tokenizer.encode_batch([str(t) for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encs), np.int64, len(encs))
        width = int(lengths.max())
        ids = np.full((len(encs), width), self.pad_id, np.int64)
        mask = np.zeros((len(encs), width), np.int64)
        for i, e in enumerate(encs):
            ids[i, : lengths[i]] = e.ids
            mask[i, : lengths[i]] = 1
        truncated = np.fromiter((bool(e.overflowing) for e in encs), bool, len(encs))
        return Encoded(ids, mask, lengths, truncated)

    def lengths(self, texts: list[str]) -> np.ndarray:
        """Token counts after truncation (for length bucketing), without padding anything."""
        return np.fromiter((len(e.ids) for e in self.tokenizer.encode_batch(list(texts))), np.int64)


def _pad_id(path: Path, tokenizer: object) -> int:
    """The pad token's id: tokenizer.json's padding section, else [PAD] / <pad>, else 0."""
    try:
        padding = json.loads(path.read_text(encoding="utf-8")).get("padding") or {}
    except (OSError, json.JSONDecodeError):
        padding = {}
    if isinstance(padding.get("pad_id"), int):
        return int(padding["pad_id"])
    for token in ("[PAD]", "<pad>"):
        tid = tokenizer.token_to_id(token)  # type: ignore[attr-defined]
        if tid is not None:
            return int(tid)
    return 0
