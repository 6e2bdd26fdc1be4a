"""Text export: candidates, parity and speed gates, the chosen runtime, dynamic axes, int8 size."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from danlu.errors import RecipeError
from danlu.export.config import ExportConfig
from tests.textdata import CLASSES, bbc_texts, tiny_classifier

MAX_LEN = 64
CFG = ExportConfig(latency_runs=5)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    return tiny_classifier(tmp_path_factory.mktemp("tiny") / "model", layers=2, max_length=MAX_LEN)


@pytest.fixture(scope="session")
def test_texts():
    return bbc_texts(100, 12)


@pytest.fixture(scope="session")
def package(tiny_folder, test_texts, tmp_path_factory):
    from danlu.export.text import package_text

    out = tmp_path_factory.mktemp("pkg") / "package"
    texts, y = test_texts
    meta = package_text(tiny_folder, out, texts, y, CLASSES, CFG, MAX_LEN, name="tiny")
    return out, meta


@pytest.mark.slow
def test_package_files_and_contract(package):
    out, meta = package
    on_disk = json.loads((out / "danlu-model.json").read_text())
    assert on_disk["format"] == "danlu-model/1" and on_disk["runtime"] == meta["runtime"]
    assert set(on_disk["runtimes"]) == {"torch", "onnxruntime", "onnxruntime-int8"}
    assert on_disk["artifacts"] == {"torch": "torch", "onnx": "model.onnx",
                                    "onnx_int8": "model.int8.onnx", "tokenizer": "tokenizer.json"}
    for f in ("model.onnx", "model.int8.onnx", "tokenizer.json", "torch/config.json",
              "torch/model.safetensors"):
        assert (out / f).is_file(), f
    assert not list(out.rglob("*.data")) and not list(out.rglob("*.bin"))  # one file, no pickle
    assert on_disk["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert on_disk["text"]["max_length"] == MAX_LEN
    for name, e in on_disk["runtimes"].items():
        assert e["parity"]["rows"] == 60 and 0 <= e["parity"]["label_agreement"] <= 1
        assert e["latency_ms"]["b1"] > 0 and e["latency_ms"]["b32"] > 0, name
        assert e["passed"] == (not e["reasons"])


def test_chosen_runtime_is_the_fastest_passing(package):
    _, meta = package
    ok = {k: e for k, e in meta["runtimes"].items() if e["passed"]}
    if ok:
        assert meta["runtime"] == min(ok, key=lambda k: ok[k]["latency_ms"]["b32"])
    else:
        assert meta["runtime"] == "torch"
    assert meta["runtime"] in meta["runtime_choice"]["why"] or not ok
    fp32 = meta["runtimes"]["onnxruntime"]["parity"]
    assert fp32["label_agreement"] == 1.0 and fp32["max_abs_diff"] < 1e-4


def test_torch_runtime_dtype_follows_the_cpu(package):
    from danlu.export.text import bf16_supported

    _, meta = package
    assert meta["runtimes"]["torch"]["dtype"] == ("bfloat16" if bf16_supported() else "float32")
    flags = open("/proc/cpuinfo").read()
    assert bf16_supported() == ("amx_bf16" in flags or "avx512_bf16" in flags)


def test_onnx_has_dynamic_batch_and_sequence(package, tiny_folder, test_texts):
    import onnxruntime as ort
    from danlu.export.text import TorchRunner

    from danlu.data.tokenize import TextEncoder

    out, _ = package
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.shape for i in sess.get_inputs()] == [["batch", "seq"], ["batch", "seq"]]
    ref = TorchRunner(tiny_folder, "float32")
    texts = test_texts[0]
    for n, length in ((3, 9), (5, 40)):  # two batch sizes and two sequence lengths
        enc = TextEncoder(out / "tokenizer.json", length).encode(texts[:n])
        assert enc.input_ids.shape == (n, length)
        probs, labels = sess.run(["probabilities", "label"], enc.arrays())
        p_ref, l_ref = ref(enc.input_ids, enc.attention_mask)
        assert probs.shape == (n, len(CLASSES))
        np.testing.assert_allclose(probs, p_ref, atol=1e-4)
        np.testing.assert_array_equal(labels, l_ref)


def test_int8_file_is_at_least_3x_smaller(package):
    out, meta = package
    onnx, int8 = (out / "model.onnx").stat().st_size, (out / "model.int8.onnx").stat().st_size
    assert onnx >= 3 * int8, (onnx, int8)
    assert meta["runtimes"]["onnxruntime-int8"]["size_bytes"] == int8


@pytest.mark.slow
def test_broken_candidate_fails_parity_and_is_not_chosen(tiny_folder, test_texts, tmp_path):
    """A candidate whose classifier weights were damaged: rejected, the reason recorded."""
    import torch
    from danlu.export.text import Candidate, TorchRunner, choose_runtime, gate_candidates, load_hf

    from danlu.data.tokenize import TextEncoder

    texts, _ = test_texts
    broken = load_hf(tiny_folder)
    with torch.no_grad():
        broken.classifier.weight.copy_(torch.randn_like(broken.classifier.weight) * 5)
    ref = Candidate("torch", "float32", TorchRunner(tiny_folder, "float32"), 0)
    enc = TextEncoder(tiny_folder / "tokenizer.json", MAX_LEN)
    from danlu.export.text import predict_texts

    ref.predictions = predict_texts(ref.runner, enc, texts)
    cands = {"onnxruntime": Candidate("onnxruntime", "float32",
                                      TorchRunner(tiny_folder, "float32", model=broken), 1),
             "torch": Candidate("torch", "float32", TorchRunner(tiny_folder, "float32"), 1)}
    gate_candidates(cands, ref, enc, texts, CFG.model_copy(update={"speed_tolerance": 10.0}))
    bad = cands["onnxruntime"]
    assert not bad.passed and bad.reasons[0].startswith("parity:")
    assert bad.parity["label_agreement"] < 1.0 and not bad.parity["passed"]
    assert cands["torch"].passed and cands["torch"].parity["max_abs_diff"] == 0.0
    runtime, why = choose_runtime(cands)
    assert runtime == "torch"


@pytest.mark.slow
def test_slow_candidate_fails_the_speed_gate(tiny_folder, test_texts):
    from danlu.export.text import Candidate, TorchRunner, choose_runtime, gate_candidates, predict_texts

    from danlu.data.tokenize import TextEncoder

    texts, _ = test_texts
    enc = TextEncoder(tiny_folder / "tokenizer.json", MAX_LEN)
    ref = Candidate("torch", "float32", TorchRunner(tiny_folder, "float32"), 0)
    ref.predictions = predict_texts(ref.runner, enc, texts)
    inner = TorchRunner(tiny_folder, "float32")

    def slow(ids, mask):
        out = inner(ids, mask)
        # twice the reference's own time at this batch, plus a margin: always past the tolerance
        time.sleep(0.02 + 0.01 * len(ids))
        return out

    cands = {"onnxruntime": Candidate("onnxruntime", "float32", slow, 1)}
    gate_candidates(cands, ref, enc, texts, CFG)
    c = cands["onnxruntime"]
    assert c.parity["passed"] and not c.passed
    assert c.reasons[0].startswith("speed:") and c.latency_ms["b32"] > ref.latency_ms["b32"]
    assert choose_runtime(cands)[0] == "torch"  # none passed: the float32 reference


def test_runtime_override(package):
    from danlu.export.text import Candidate, choose_runtime

    def cand(name: str, ms: float, ok: bool) -> Candidate:
        c = Candidate(name, "float32", lambda i, m: None, 1, latency_ms={"b32": ms, "speedup_b32": 1.0})
        c.reasons = [] if ok else ["parity: broken"]
        return c

    cands = {"torch": cand("torch", 10, True), "onnxruntime": cand("onnxruntime", 5, True),
             "onnxruntime-int8": cand("onnxruntime-int8", 1, False)}
    assert choose_runtime(cands)[0] == "onnxruntime"
    assert choose_runtime(cands, "torch")[0] == "torch"
    rt, why = choose_runtime(cands, "onnxruntime-int8")
    assert rt == "onnxruntime-int8" and "failed" in why
    del cands["onnxruntime-int8"]
    with pytest.raises(RecipeError, match="export.runtime"):
        choose_runtime(cands, "onnxruntime-int8")


def test_override_through_package_and_float32_torch(tiny_folder, test_texts, tmp_path):
    from danlu.export.text import package_text

    texts, y = test_texts
    cfg = ExportConfig(latency_runs=3, runtime="torch", torch_dtype="float32")
    meta = package_text(tiny_folder, tmp_path / "p", texts[:20], y[:20], CLASSES, cfg, MAX_LEN,
                        only=["torch"])
    assert meta["runtime"] == "torch" and meta["runtimes"]["torch"]["dtype"] == "float32"
    assert meta["runtimes"]["torch"]["parity"]["max_abs_diff"] == 0.0
    assert meta["runtime_choice"]["override"] == "torch"
    assert not (tmp_path / "p" / "model.onnx").exists()
    assert set(meta["artifacts"]) == {"torch", "tokenizer"}
