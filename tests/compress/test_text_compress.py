"""Text compression: what cannot apply is rejected; the student starts as the teacher's layers."""

from __future__ import annotations

import numpy as np
import pytest

from danlu.compress.config import CompressConfig, DistillConfig, PruneConfig, QuantizeConfig, VariantConfig
from danlu.errors import RecipeError
from tests.textdata import CLASSES, bbc_texts, tiny_classifier


@pytest.mark.parametrize("variant, path", [
    (VariantConfig(name="p", prune=PruneConfig(method="structured")), "compress.variants[0].prune"),
    (VariantConfig(name="q", quantize=QuantizeConfig(mode="static")),
     "compress.variants[0].quantize.mode"),
    (VariantConfig(name="f", quantize=QuantizeConfig(mode="fp16")), "compress.variants[0].quantize.mode"),
    (VariantConfig(name="s", distill=DistillConfig(student={"arch": "cnn"})),
     "compress.variants[0].distill.student.arch"),
    (VariantConfig(name="l", distill=DistillConfig(student={"arch": "transformer", "layers": [0, 6]})),
     "compress.variants[0].distill.student.layers"),
])
def test_steps_that_cannot_apply_to_text_are_rejected(variant, path):
    from danlu.compress.text import check_text_variants

    with pytest.raises(RecipeError) as e:
        check_text_variants([variant], teacher_layers=6)
    assert path in str(e.value)


def test_text_defaults_and_student_layers():
    from danlu.compress.text import check_text_variants, student_layers, text_variants

    vs = text_variants()
    check_text_variants(vs, 6)  # the defaults are valid for a 6-layer teacher
    assert [v.name for v in vs] == ["student", "int8", "student-int8"]
    assert student_layers(vs[0].distill, 6) == [0, 2, 4]
    cfg = DistillConfig(student={"arch": "transformer", "layers": [1, 3, 5]})
    assert student_layers(cfg, 6) == [1, 3, 5]
    # the section's (image) defaults, even written out in a resolved recipe, mean "text defaults"
    from danlu.compress.config import _default_variants

    dumped = CompressConfig.model_validate(CompressConfig().model_dump(mode="json"))
    assert dumped.variants == _default_variants() != CompressConfig(variants=vs[:1]).variants


@pytest.mark.slow
def test_student_keeps_the_teachers_chosen_layers(tmp_path):
    """A student of layer [1] of a 2-layer teacher: its one block is the teacher's block 1
    (not block 0), embeddings and head too; lr ~0 so training leaves the initialisation."""
    from safetensors.torch import load_file

    from danlu.compress.text import distill_text
    from danlu.export.text import TorchRunner

    teacher = tiny_classifier(tmp_path / "teacher", layers=2, max_length=32, steps=5)
    train = bbc_texts(30, 4)
    val = bbc_texts(40, 2)
    rec = distill_text(teacher, tmp_path / "student", [1], DistillConfig(epochs=1, lr=1e-12, batch_size=8),
                       train, val, CLASSES, 32, seed=0)
    assert rec["student"] == {"arch": "transformer", "layers": [1], "of_teacher_layers": 2}
    assert rec["teacher_logits_cached"] and rec["training"]["steps"] == 3
    t = load_file(str(teacher / "model.safetensors"))
    s = load_file(str(tmp_path / "student" / "model.safetensors"))
    assert not any(k.startswith("bert.encoder.layer.1.") for k in s)
    for k, v in s.items():
        src = k.replace("bert.encoder.layer.0.", "bert.encoder.layer.1.")
        np.testing.assert_allclose(v.numpy(), t[src].numpy(), atol=1e-6, err_msg=k)
    w0 = t["bert.encoder.layer.0.attention.self.query.weight"]
    assert not np.allclose(s["bert.encoder.layer.0.attention.self.query.weight"].numpy(), w0.numpy())
    assert (tmp_path / "student" / "tokenizer.json").is_file()
    # the student folder loads and runs as a torch runtime
    import json

    assert json.loads((tmp_path / "student" / "config.json").read_text())["num_hidden_layers"] == 1
    probs, _ = TorchRunner(tmp_path / "student", "float32")(np.array([[101, 2000, 102]]),
                                                            np.ones((1, 3), np.int64))
    assert probs.shape == (1, len(CLASSES))


def test_the_text_recipe_compresses_a_3_of_6_student_and_int8():
    from danlu.compress.text import check_text_variants
    from danlu.recipe import load_recipe
    from tests.conftest import ROOT

    r = load_recipe(ROOT / "recipes" / "text.yaml")
    vs = {v.name: v for v in r.compress.variants}
    check_text_variants(list(vs.values()), teacher_layers=6)
    assert vs["student"].distill.student.layers == [0, 2, 4]
    assert vs["int8"].quantize.mode == vs["student-int8"].quantize.mode == "dynamic"
    assert vs["student-int8"].from_ == "student"
