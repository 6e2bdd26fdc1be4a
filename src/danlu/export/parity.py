"""Parity: ONNX Runtime against PyTorch on real rows; over tolerance is an error, not a warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.errors import ParityError

__all__ = ["check_parity"]


def check_parity(module: nn.Module, onnx_path: Path, x: np.ndarray, input_name: str,
                 atol: float) -> dict[str, Any]:
    """Max |prob diff| and label agreement of ORT vs torch on `x`; raise ParityError past atol."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(x, dtype=np.float32)
    ort_probs, ort_labels = sess.run(["probabilities", "label"], {input_name: x})
    with torch.inference_mode():
        probs, labels = module.eval()(torch.from_numpy(x))
    diff = float(np.abs(ort_probs - probs.numpy()).max()) if len(x) else 0.0
    agree = float((ort_labels == labels.numpy()).mean()) if len(x) else 1.0
    result = {"rows": len(x), "max_abs_diff": diff, "label_agreement": agree, "atol": atol,
              "passed": diff <= atol and agree == 1.0, "runtime": f"onnxruntime {ort.__version__}"}
    if not result["passed"]:
        raise ParityError(f"ONNX Runtime disagrees with PyTorch on {len(x)} test rows: max |diff| "
                          f"{diff:.3g} (tolerance {atol:g}), labels agree {agree:.2%} (need 100%)")
    return result
