"""Contract checks reused by the tests: what every model family, feature type, package and
server must satisfy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["check_package_loads"]


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
