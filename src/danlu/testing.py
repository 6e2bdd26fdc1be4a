"""Contract checks reused by the tests: what every model family, feature type, package and
server must satisfy."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["check_model_exports", "check_package_loads"]


def check_model_exports(model_cfg: Any, features: list[Any], head: Any,
                        values: dict[str, np.ndarray], atol: float = 1e-4) -> dict[str, Any]:
    """Build the family's network for fitted `features` and `head` (seeded), wrap it as the
    deployable `Packaged` module, export ONNX, and compare ONNX Runtime (fed by the features'
    torch-free `encode`, as the server feeds it) with torch on `values`: parity as export
    records it (max |difference| of the first output, agreement of the label)."""
    import onnxruntime as ort

    from danlu.export.onnx import export_onnx
    from danlu.export.runtimes import parity
    from danlu.features.base import NOTE
    from danlu.models import family
    from danlu.models.packaged import Packaged, predict

    torch.manual_seed(0)
    fam = family(model_cfg)
    fam.check(model_cfg, features)
    fam.bind(model_cfg, features)
    module = Packaged(features, fam.build(model_cfg, features, head).eval(), head).eval()
    ref = predict(module, values)
    with tempfile.TemporaryDirectory() as d:
        path = export_onnx(module, Path(d) / "model.onnx")
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {k: v for f in features for k, v in f.encode(values[f.name]).items()
                if not k.startswith(NOTE)}
        got = tuple(sess.run(module.output_names, feed))
    return parity(ref, got, atol, 1.0)


def check_package_loads(pkg: Path, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Load a package with plain onnxruntime (no danlu code) and run raw client values of its
    in-graph features through it: what a user of Triton or ORT alone would do."""
    import json

    import onnxruntime as ort

    meta = json.loads((pkg / "danlu-model.json").read_text())
    sess = ort.InferenceSession(str(pkg / meta["artifacts"]["onnx"]),
                                providers=["CPUExecutionProvider"])
    declared = [i["name"] for i in meta["inputs"]]
    assert [i.name for i in sess.get_inputs()] == declared, "package inputs differ from the graph"
    assert [o.name for o in sess.get_outputs()] == [o["name"] for o in meta["outputs"]]
    feed = {name: np.asarray(values[name], np.float32) for name in declared}
    probs, labels = sess.run(["probabilities", "label"], feed)
    return probs, labels
