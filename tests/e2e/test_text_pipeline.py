"""The session's tiny real text run end to end: data -> train -> evaluate -> export (runtimes
chosen by measurement) -> compress (a copy resumed with a compress section: a teacher-layer
student and int8, gated and measured; tests/conftest.py `text_compressed`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.textdata import CLASSES


@pytest.mark.slow
def test_export_writes_a_text_package_with_a_measured_runtime(text_run):
    pkg = text_run.run_dir / "package"
    meta = json.loads((pkg / "danlu-model.json").read_text())
    assert meta["schema_version"] == 2 and meta["labels"] == CLASSES
    (feature,) = meta["features"]
    assert feature["type"] == "text" and meta["inputs"] == [feature["input"]]
    assert set(meta["runtimes"]) == {"torch", "onnxruntime", "onnxruntime-int8"}
    chosen = meta["runtimes"][meta["runtime"]]
    assert chosen["passed"] or meta["runtime"] == "torch"
    assert text_run.metrics["export"]["runtime"] == meta["runtime"]
    assert meta["metrics"]["test"]["n"] == meta["runtimes"]["torch"]["parity"]["rows"]
    assert (pkg / "hf" / "model.safetensors").is_file() and (pkg / "tokenizer.json").is_file()
    assert "Runtimes" in (pkg / "README.md").read_text()
    # the package's ONNX answers for texts tokenized by the package's own tokenizer
    import onnxruntime as ort

    from danlu.data.tokenize import TextEncoder

    enc = TextEncoder(pkg / feature["state"]["tokenizer"],
                      feature["state"]["max_length"]).encode(["Stocks fell.", "A goal!"])
    probs, labels = ort.InferenceSession(str(pkg / "model.onnx")).run(None, enc.arrays())
    assert probs.shape == (2, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)


@pytest.mark.slow
def test_compress_measures_text_variants_like_any_other(text_compressed):
    """The pipeline's compress stage on a transformer: the one compress path (model folders
    packaged by build_package, quantized graphs, everything measured as served)."""
    run_dir, rep = text_compressed
    rows = {r["name"]: r for r in rep["variants"]}
    assert list(rows) == ["baseline", "student", "student-int8"] and rep["variants_from"] == "recipe"
    for name in ("student", "student-int8"):
        r = rows[name]
        assert r["b1_ms"] > 0 and r["b32_ms"] > 0 and r["size_bytes"] > 0
        assert set(r["vs_baseline"]) >= {"accuracy_diff", "ci", "mcnemar_p"}
        assert r["params"] < rows["baseline"]["params"]
    assert (rows["student-int8"]["runtime"], rows["student-int8"]["dtype"]) == ("onnxruntime", "int8")
    assert rows["student-int8"]["size_bytes"] * 3 <= rows["student"]["params"] * 4
    comp = json.loads((run_dir / "compress" / "student" / "compression.json").read_text())
    assert comp["distill"]["student"]["layers"] == [1] and comp["distill"]["teacher_logits_cached"]
    assert rows["student"]["distillation_gain"] == comp["distill"]["gain"]
    student_pkg = json.loads((run_dir / "compress" / "student" / "danlu-model.json").read_text())
    assert student_pkg["runtime"] in student_pkg["runtimes"]
    assert rows["student"]["runtime"] == student_pkg["runtime"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["compress"]["metrics"]["chosen"] == rep["chosen"]
