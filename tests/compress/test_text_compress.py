"""Text (transformer) compression through the one compress path: what the family cannot take is
refused before any work, the student starts as the teacher's chosen layers, and the student and
its int8 are packaged, measured as served and gated like any variant."""

from __future__ import annotations

import json

import numpy as np
import pytest

from danlu.compress.config import DistillConfig, VariantConfig
from danlu.errors import RecipeError

# Every test here starts from the session's tiny text run (tests/conftest.py text_run, ~25-80 s).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def text_teacher(text_run):
    from danlu.models.load import load_model

    return load_model(text_run.run_dir / "train" / "model")


def _baseline(model, tmp_path):
    from danlu.compress.variants import Variant

    return Variant("baseline", tmp_path, model.family, model)


@pytest.mark.parametrize("variant, path", [
    ({"prune": {"method": "structured"}}, "compress.variants[0].prune"),
    ({"prune": {"method": "magnitude"}}, "compress.variants[0].prune"),
    ({"quantize": {"mode": "static"}}, "compress.variants[0].quantize.mode"),
    ({"quantize": {"mode": "fp16"}}, "compress.variants[0].quantize.mode"),
    ({"quantize": {"mode": "qat"}}, "compress.variants[0].quantize.mode"),
    ({"distill": {"student": {"arch": "cnn"}}}, "compress.variants[0].distill.student.arch"),
    ({"distill": {"student": {"arch": "transformer", "layers": [0, 2]}}},
     "compress.variants[0].distill.student.layers"),
])
def test_steps_the_transformer_family_cannot_take_are_refused(variant, path, text_teacher,
                                                               tmp_path):
    from danlu.compress.variants import check_variants

    with pytest.raises(RecipeError) as e:
        check_variants(_baseline(text_teacher, tmp_path), [VariantConfig(name="v", **variant)])
    assert e.value.path == path


def test_the_family_defaults_are_valid_for_the_teacher(text_teacher, tmp_path):
    from danlu.compress.config import CompressConfig
    from danlu.compress.plan import resolve_variants
    from danlu.compress.variants import check_variants

    variants, _ = resolve_variants(CompressConfig(), None, text_teacher.family)
    check_variants(_baseline(text_teacher, tmp_path), variants)
    cfg, net = text_teacher.family.student(text_teacher, variants[0].distill, "x")
    assert cfg.layers == [0] and net.hf.config.num_hidden_layers == 1  # every other of 2


def test_the_shipped_text_recipe_compresses_a_3_of_6_student_and_int8(text_teacher, tmp_path):
    """recipes/text.yaml's variants against a 6-layer MiniLM teacher (the recipe's model)."""
    from danlu.compress.variants import check_variants
    from danlu.models.load import Loaded
    from danlu.recipe import load_recipe
    from tests.conftest import ROOT

    r = load_recipe(ROOT / "recipes" / "text.yaml")
    fam, feats, head = text_teacher.family, text_teacher.features, text_teacher.head
    six = Loaded(fam, r.model, feats, head, fam.build(r.model, feats, head), tmp_path)
    check_variants(_baseline(six, tmp_path), r.compress.variants)
    vs = {v.name: v for v in r.compress.variants}
    assert fam.student(six, vs["student"].distill, "x")[0].layers == [0, 2, 4]
    assert vs["int8"].quantize.mode == vs["student-int8"].quantize.mode == "dynamic"
    assert vs["student-int8"].from_ == "student"


def test_the_student_keeps_the_teachers_chosen_layers(text_teacher):
    """A student of layer [1] of the 2-layer teacher: its one block is the teacher's block 1
    (not block 0), embeddings and head too; its config names the pretrained layer it came from."""
    cfg, net = text_teacher.family.student(
        text_teacher, DistillConfig(student={"arch": "transformer", "layers": [1]}), "x")
    assert text_teacher.cfg.layers == [0, 1] and cfg.layers == [1]
    t = text_teacher.net.state_dict()
    s = net.state_dict()
    assert not any(".layer.1." in k for k in s) and net.hf.config.num_hidden_layers == 1
    for k, v in s.items():
        np.testing.assert_array_equal(v.numpy(), t[k.replace(".layer.0.", ".layer.1.")].numpy(),
                                      err_msg=k)
    assert text_teacher.net.hf.config.num_hidden_layers == 2  # the teacher is untouched


def test_the_student_and_its_int8_are_measured_as_served(text_compressed):
    run_dir, rep = text_compressed
    rows = {r["name"]: r for r in rep["variants"]}
    assert list(rows) == ["baseline", "student", "student-int8"]
    for name, r in rows.items():
        assert r["b1_ms"] > 0 and r["b32_ms"] > 0 and r["size_bytes"] > 0
        meta = json.loads((run_dir / r["dir"] / "danlu-model.json").read_text())
        assert r["runtime"] == meta["runtime"] and meta["compression"]["variant"] == name
        with np.load(run_dir / r["dir"] / "predictions.npz") as z:
            assert r["accuracy"] == pytest.approx(float((z["labels"] == z["y"]).mean()))
        if name != "baseline":
            assert set(r["vs_baseline"]) >= {"accuracy_diff", "ci", "mcnemar_p"}
            assert set(r["vs_parent"]) == {"speed", "accuracy"}
    # The student: a model folder keeping one layer, packaged with its family's runtimes (the
    # export stage's candidates, gated), served in the fastest passing one.
    student = json.loads((run_dir / "compress" / "student" / "danlu-model.json").read_text())
    assert set(student["runtimes"]) == {"torch", "onnxruntime", "onnxruntime-int8"}
    assert student["runtime"] in student["runtimes"] and (run_dir / "compress" / "student" /
                                                          "tokenizer.json").is_file()
    model = json.loads((run_dir / "compress" / "student" / "model" / "model.json").read_text())
    assert model["config"]["layers"] == [1] and model["family"] == "transformer"
    assert rows["student"]["params"] < rows["baseline"]["params"]
    comp = json.loads((run_dir / "compress" / "student" / "compression.json").read_text())
    assert comp["distill"]["student"]["layers"] == [1] and comp["distill"]["teacher_logits_cached"]
    gain = rows["student"]["distillation_gain"]  # vs the same student trained alone
    assert gain == comp["distill"]["gain"] and gain["ci"][0] <= gain["accuracy_gain"] <= gain["ci"][1]
    assert (run_dir / "compress" / "student" / "undistilled" / "predictions.npz").is_file()
    # Its int8: the dynamic per-channel graph of the student's ONNX, served by ONNX Runtime.
    q = rows["student-int8"]
    assert (q["runtime"], q["dtype"], q["quantized"]) == ("onnxruntime", "int8", "dynamic")
    assert q["size_bytes"] * 3 <= rows["student"]["params"] * 4
    qmeta = json.loads((run_dir / "compress" / "student-int8" / "danlu-model.json").read_text())
    assert qmeta["features"] == student["features"] and qmeta["parity"]["reference"].startswith("student")


def test_a_text_package_is_a_baseline_for_int8(text_run, tmp_path):
    """A package folder (no torch steps): served in its chosen runtime, parameters from its
    ONNX graph, and its int8 child quantized with the transformer family's settings."""
    from danlu.compress.config import CompressConfig
    from danlu.compress.stage import compress
    from danlu.runs import Run, read_json
    from tests.compress.conftest import copy_run

    run_dir = copy_run(text_run.run_dir, tmp_path / "run")
    pkg = read_json(run_dir / "package" / "danlu-model.json")
    cfg = CompressConfig.model_validate({"baseline": str(run_dir / "package"),
                                         "latency": {"runs": 5, "warmup": 1},
                                         "budget": {"max_accuracy_drop": 1.0},
                                         "variants": [{"name": "q", "quantize": {"mode": "auto"}}]})
    compress(Run.open(run_dir), cfg)
    rows = {r["name"]: r for r in read_json(run_dir / "compress" / "pareto.json")["variants"]}
    assert rows["baseline"]["runtime"] == pkg["runtime"]
    assert rows["baseline"]["params"] > 1e6 and rows["q"]["dtype"] == "int8"
    q = read_json(run_dir / "compress" / "q" / "compression.json")["quantize"]
    assert q["candidates"] == ["dynamic"] and q["chosen_mode"] == "dynamic"  # the family's only
