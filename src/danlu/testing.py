"""Contract checks reused by the tests: what every model, package and server must satisfy."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["check_model_exports", "check_package_loads"]


def check_model_exports(model_cfg: Any, features: int, image_shape: tuple[int, int, int] | None,
                        num_classes: int, atol: float = 1e-4) -> dict[str, Any]:
    """Build the model, wrap it with a normalizer, export ONNX, check parity on random rows."""
    from danlu.export.onnx import export_onnx
    from danlu.export.parity import check_parity
    from danlu.models import InputSpec, build_model
    from danlu.models.packaged import Packaged

    torch.manual_seed(0)
    net = build_model(model_cfg, InputSpec(features, image_shape), num_classes).eval()
    rng = np.random.default_rng(0)
    shift = torch.from_numpy(rng.normal(size=features).astype(np.float32))
    scale = torch.from_numpy(rng.uniform(0.5, 2.0, size=features).astype(np.float32))
    module = Packaged(net, shift, scale).eval()
    x = rng.normal(size=(37, features)).astype(np.float32)  # an odd batch: not the example's 2
    with tempfile.TemporaryDirectory() as d:
        path = export_onnx(module, features, Path(d) / "model.onnx", "features")
        return check_parity(module, path, x, "features", atol)


def check_package_loads(pkg: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Load a package with plain onnxruntime (no danlu code) and run raw rows through it."""
    import json

    import onnxruntime as ort

    meta = json.loads((pkg / "danlu-model.json").read_text())
    sess = ort.InferenceSession(str(pkg / meta["artifacts"]["onnx"]),
                                providers=["CPUExecutionProvider"])
    declared = [i["name"] for i in meta["inputs"]]
    assert [i.name for i in sess.get_inputs()] == declared, "package inputs differ from the graph"
    assert [o.name for o in sess.get_outputs()] == [o["name"] for o in meta["outputs"]]
    probs, labels = sess.run(["probabilities", "label"], {declared[0]: x.astype(np.float32)})
    return probs, labels
