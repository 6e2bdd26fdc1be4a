"""PyTorch engine: the package's `torch/` model folder (danlu.models.load), in the recorded dtype.

The only serve module that imports torch; `load_runtime` imports it only for a package served
with the "torch" runtime, so ONNX packages stay torch-free. The module it runs is the same
`Packaged` that evaluation ran and export measured: graph inputs in, the head's outputs out.
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

__all__ = ["DTYPES", "TorchRuntime", "native_bf16"]

log = logging.getLogger("danlu.serve")

# danlu-model.json runtimes.torch.dtype -> torch dtype.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TorchRuntime(Runtime):
    """The model folder's `Packaged` module, eval mode, cast to the package's dtype; the head
    decodes in float32 whatever the dtype (probabilities = softmax of fp32 logits)."""

    def __init__(self, package: Package, cfg: ServeConfig | None = None, artifact: str = "torch",
                 entry: dict[str, Any] | None = None):
        from danlu.models.load import load_model

        cfg, entry = cfg or ServeConfig(), entry or {}
        folder = package.dir / package.artifacts.get(artifact, artifact)
        if not folder.is_dir():
            raise DanluError(f"{folder}: missing; danlu-model.json names it as the {artifact!r} "
                             "artifact (a model folder: model.json + weights)")
        self.dtype = _dtype(package, entry.get("dtype", "float32"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a server never reaches the hub
        threads = intra_op_threads(cfg)
        # Same thread policy as ONNX Runtime: cores shared among concurrent batches.
        torch.set_num_threads(threads)
        self.module = load_model(folder).packaged().to(self.dtype).eval()
        self.options = {"artifact": folder.name, "dtype": str(self.dtype).removeprefix("torch."),
                        "intra_op_threads": threads}
        self.inputs, self.outputs = package.model_inputs, package.outputs
        self._names = [s.name for s in package.model_inputs]
        self._all_outputs = [s.name for s in package.outputs]

    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """One batch of graph inputs -> the head's outputs (float outputs as fp32)."""
        try:
            feed = [torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in self._names]
        except KeyError as e:
            raise RuntimeInputError(f"missing model input {e}; the model takes "
                                    f"{', '.join(self._names)}") from e
        feed = [t.to(self.dtype) if t.is_floating_point() else t for t in feed]
        with torch.inference_mode():
            out = self.module(*feed)
        result = {name: (t.float() if t.is_floating_point() else t).numpy()
                  for name, t in zip(self._all_outputs, out, strict=True)}
        return {k: result[k] for k in (outputs or self._all_outputs)}


def _dtype(package: Package, name: Any) -> torch.dtype:
    """The recorded dtype; bfloat16 falls back to float32 (logged) on a CPU without it."""
    if name not in DTYPES:
        raise DanluError(f"{package.dir}: runtimes.torch.dtype: got {name!r}, expected one of "
                         f"{', '.join(DTYPES)}")
    if name == "bfloat16" and not native_bf16():
        log.warning("%s: this CPU has no native bfloat16; serving the torch runtime in float32",
                    package.name)
        return torch.float32
    return DTYPES[name]


def native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively here (AVX512-BF16 / AMX); else bf16 is emulated, slow.
    The one test of it: export picks the torch runtime's dtype with it too."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private op: if it is gone, trust the package
        return True
