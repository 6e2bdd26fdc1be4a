"""What the train stage does differently for text: tokenize splits, add LoRA, save a HF folder.

The loop itself is fit(): text enters it as packed int64 tensors [rows, 2, width] (see
danlu.models.text) plus per-row token counts for length bucketing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.data.tokenize import TextEncoder
from danlu.errors import RecipeError
from danlu.models.text import apply_lora, encode_texts, merged, resolve_pretrained, save_text_model
from danlu.runs import write_json

__all__ = ["save_text_run", "text_tensors", "prepare_text_model"]


def text_tensors(recipe: Any, splits: Any, device: torch.device
                 ) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """names -> (packed token tensor, labels) of those splits, tokenized by TextEncoder."""
    if recipe.preprocess.augment:
        raise RecipeError("preprocess.augment", got=[s.name for s in recipe.preprocess.augment],
                          expected="[] for text data (the augmentations are for images and "
                                   "tables)")
    encoder = TextEncoder.from_folder(resolve_pretrained(recipe.model.pretrained),
                                      recipe.model.max_length)

    def tensors(*names: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = np.concatenate([splits.x[s] for s in names])
        y = np.concatenate([splits.y[s] for s in names])
        return encode_texts(encoder, x).to(device), torch.from_numpy(y).to(device)

    return tensors


def token_lengths(x: torch.Tensor) -> torch.Tensor:
    """Tokens per row of a packed tensor (its attention mask summed)."""
    return x[:, 1].sum(dim=1)


def prepare_text_model(model: nn.Module, cfg: Any) -> nn.Module:
    """LoRA adapters when train.lora is set; the model as built otherwise."""
    return apply_lora(model, cfg.lora) if cfg.lora is not None else model


def save_text_run(out: Path, model: nn.Module, labels: list[str], recipe: Any) -> None:
    """train/model/ (HF folder, adapters merged, + tokenizer.json) and train/model.json."""
    cfg = recipe.model
    pretrained = resolve_pretrained(cfg.pretrained)
    hf = merged(model).cpu()
    save_text_model(hf, out / "model", labels, pretrained)
    lora = recipe.train.lora
    write_json(out / "model.json", {
        "arch": "transformer", "folder": "model", "max_length": cfg.max_length,
        "labels": list(labels), "pretrained": str(pretrained), "layers": cfg.layers,
        "lora": lora.model_dump(mode="json") if lora is not None else None})
