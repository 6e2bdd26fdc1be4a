"""PyTorch engine for text packages: the `torch/` Hugging Face folder, in the recorded dtype.

The only serve module that imports torch or transformers; `load_runtime` imports it only for
a package served with the "torch" runtime, so ONNX packages stay torch-free.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from danlu.errors import DanluError
from danlu.serve.config import ServeConfig
from danlu.serve.package import Package
from danlu.serve.runtimes.base import Runtime, RuntimeInputError, intra_op_threads

__all__ = ["DTYPES", "TorchRuntime"]

log = logging.getLogger("danlu.serve")

# danlu-model.json runtimes.torch.dtype -> torch dtype.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TorchRuntime(Runtime):
    """AutoModelForSequenceClassification from `torch/` (safetensors, no hub), eval mode,
    cast to the package's dtype; probabilities = fp32 softmax of the logits, label = argmax."""

    def __init__(self, package: Package, cfg: ServeConfig | None = None, artifact: str = "torch",
                 entry: dict[str, Any] | None = None):
        cfg, entry = cfg or ServeConfig(), entry or {}
        folder = package.dir / package.artifacts.get(artifact, artifact)
        if not (folder / "config.json").is_file():
            raise DanluError(f"{folder}: no config.json; the {artifact!r} artifact must be a "
                             "Hugging Face folder (save_pretrained) for the torch runtime")
        self.dtype = _dtype(package, entry.get("dtype", "float32"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a server never reaches the hub
        from transformers import AutoModelForSequenceClassification

        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, local_files_only=True, use_safetensors=True)
        except (OSError, ValueError) as e:
            raise DanluError(f"{folder}: transformers cannot load it ({e})") from e
        # Same thread policy as ONNX Runtime: cores shared among concurrent batches.
        torch.set_num_threads(intra_op_threads(cfg))
        self.model = model.to(self.dtype).eval()
        self.inputs, self.outputs = package.model_inputs, package.outputs
        self._names = [s.name for s in package.model_inputs]
        self._all_outputs = [s.name for s in package.outputs]

    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """One batch of token ids -> probabilities (fp32) and labels (int64)."""
        try:
            feed = {n: torch.from_numpy(np.ascontiguousarray(inputs[n], np.int64))
                    for n in self._names}
        except KeyError as e:
            raise RuntimeInputError(f"missing model input {e}; the model takes "
                                    f"{', '.join(self._names)}") from e
        with torch.inference_mode():
            logits = self.model(**feed).logits.float()  # softmax in fp32 whatever the dtype
            probs = logits.softmax(-1)
        result = {"probabilities": probs.numpy(), "label": probs.argmax(-1).numpy()}
        return {k: result[k] for k in (outputs or self._all_outputs)}


def _dtype(package: Package, name: Any) -> torch.dtype:
    """The recorded dtype; bfloat16 falls back to float32 (logged) on a CPU without it."""
    if name not in DTYPES:
        raise DanluError(f"{package.dir}: runtimes.torch.dtype: got {name!r}, expected one of "
                         f"{', '.join(DTYPES)}")
    if name == "bfloat16" and not _native_bf16():
        log.warning("%s: this CPU has no native bfloat16; serving the torch runtime in float32",
                    package.name)
        return torch.float32
    return DTYPES[name]


def _native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 / AMX); else bf16 is emulated, slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private op: if it is gone, trust the package
        return True
