"""The transformer family and its Hugging Face helpers (danlu.models.transformer, models/hf.py), on
MiniLM and real BBC News articles: the deployable module's outputs, packed batches cut to their
longest text, LoRA merge parity (on the session text run's trained model), layer subsets,
freezing, gradient checkpointing, and clear errors for bad settings."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from danlu.errors import RecipeError
from danlu.features.category import CategoryHead
from danlu.features.number import NumberFeature
from danlu.features.text import TextFeature
from danlu.models import models
from danlu.models.hf import (
    TextClassifier,
    apply_lora,
    encoder_layers,
    load_text_classifier,
    resolve_pretrained,
)
from danlu.models.load import load_model, save_model
from danlu.models.packaged import Encoding, Packaged, predict
from danlu.models.transformer import TransformerConfig
from danlu.recipe import load_recipe
from danlu.train.config import LoraConfig
from danlu.train.optim import build_optimizer
from tests.textdata import CLASSES, bbc_texts

FAMILY = models["transformer"]


@pytest.fixture(scope="module")
def articles() -> list[str]:
    """Real BBC News articles: two of every class, not among the text run's training texts."""
    return bbc_texts(60, 2)[0]


@pytest.fixture(scope="module")
def feature() -> TextFeature:
    """A text feature bound to MiniLM's tokenizer, texts cut to 48 tokens."""
    return TextFeature("text", ["text"]).bind_tokenizer(
        resolve_pretrained("minilm") / "tokenizer.json", 48)


def _build(feature: TextFeature, **cfg) -> TextClassifier:
    torch.manual_seed(0)
    return FAMILY.build(TransformerConfig(**cfg), [feature], CategoryHead("label", CLASSES))


def _packed(feature: TextFeature, texts: list[str]) -> torch.Tensor:
    """What the network trains on: ids and mask packed [B, 2, width of the longest text]."""
    return Encoding([feature]).network_input({"text": np.array(texts, dtype=object)})


def test_the_family_binds_the_pretrained_tokenizer_to_its_text_feature() -> None:
    f = TextFeature("body", ["body"])
    FAMILY.bind(TransformerConfig(max_length=40), [f])
    assert f.state_dict() == {"tokenizer": "tokenizer.json", "max_length": 40}
    assert f.assets() == [resolve_pretrained("minilm") / "tokenizer.json"]


def test_the_family_takes_one_text_feature_and_names_the_fix_otherwise(feature) -> None:
    cfg = TransformerConfig()
    with pytest.raises(RecipeError, match="arch: mlp") as info:
        FAMILY.check(cfg, [NumberFeature("features", ["a", "b"])])
    assert info.value.path == "model.arch"
    with pytest.raises(RecipeError, match="one text feature") as info:
        FAMILY.check(cfg, [feature, TextFeature("title", ["title"])])
    assert info.value.path == "data.features"


def test_packaged_gives_probabilities_and_labels(feature, articles) -> None:
    module = Packaged([feature], _build(feature, layers=[0]).eval(), CategoryHead("label", CLASSES))
    probs, label = predict(module, {"text": np.array(articles[:6], dtype=object)})
    assert probs.dtype == np.float32 and probs.shape == (6, 5) and label.dtype == np.int64
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(label, probs.argmax(1))
    assert module.input_names == ["input_ids", "attention_mask"]
    assert module.output_names == ["probabilities", "label"]


def test_packed_batches_are_cut_to_their_longest_text(feature) -> None:
    texts = ["short one", "a somewhat longer text about the markets today", "mid length text"]
    x = _packed(feature, texts)
    net = _build(feature, layers=[0]).eval()
    with torch.inference_mode():
        logits = net(x[[0, 2]])  # the batch's longest is 5 tokens, the split's 11
        alone = feature.encode(np.array([texts[0], texts[2]], dtype=object))
        ref = net.hf(input_ids=torch.from_numpy(alone["input_ids"]),
                     attention_mask=torch.from_numpy(alone["attention_mask"])).logits
    assert alone["input_ids"].shape[1] < x.shape[2]
    assert torch.equal(logits, ref)


def test_lora_merge_matches_the_adapter_model_on_real_text(text_run, articles, tmp_path) -> None:
    """The text run's trained model with LoRA adapters on query and value (B made non-zero, as
    training would): the saved model folder, adapters merged, answers as the adapted model."""
    loaded = load_model(text_run.run_dir / "train" / "model")
    net = apply_lora(loaded.net, LoraConfig(r=4, alpha=8, targets=["query", "value"]))
    with torch.no_grad():  # lora_B starts at zero (a no-op adapter): give it a real update
        gen = torch.Generator().manual_seed(0)
        for name, p in net.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    (feature,) = loaded.features
    x = _packed(feature, articles)
    net.eval()
    with torch.inference_mode():
        adapted = net(x)
        net.hf.disable_adapter_layers()
        base = net(x)
        net.hf.enable_adapter_layers()
    folder = save_model(tmp_path / "model", loaded.cfg, net, loaded.features, loaded.head)
    again = load_model(folder)
    probs, _ = predict(again.packaged(), {"text": np.array(articles, dtype=object)})
    assert (adapted - base).abs().max() > 0.02  # the adapters change the outputs...
    np.testing.assert_allclose(probs, torch.softmax(adapted, 1).numpy(), atol=1e-5)  # ...kept
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.json", "model.safetensors", "tokenizer.json"]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert not any("lora" in k for k in f.keys())
    hf = load_text_classifier(folder)  # a plain Hugging Face folder that any HF tool reads
    assert hf.config.id2label == dict(enumerate(CLASSES))


def test_a_layer_subset_keeps_the_teachers_layers(feature) -> None:
    net = _build(feature, layers=[0, 2, 4])
    blocks = encoder_layers(net.hf)
    assert len(blocks) == 3 and net.hf.config.num_hidden_layers == 3
    teacher = resolve_pretrained("minilm") / "model.safetensors"
    with safe_open(str(teacher), "pt") as f:
        for new, old in enumerate([0, 2, 4]):
            for name, p in blocks[new].named_parameters():
                assert torch.equal(p, f.get_tensor(f"encoder.layer.{old}.{name}")), (new, name)
            # and not the layer that used to sit at that position
            q = blocks[new].attention.self.query.weight
            if new != old:
                assert not torch.equal(
                    q, f.get_tensor(f"encoder.layer.{new}.attention.self.query.weight"))


def test_a_layer_the_pretrained_model_lacks_is_a_recipe_error(feature) -> None:
    with pytest.raises(RecipeError, match="below the pretrained model's 6 layers") as info:
        _build(feature, layers=[0, 6])
    assert info.value.path == "model.layers"


def test_freezing_freezes_embeddings_and_the_lowest_layers(feature, articles) -> None:
    net = _build(feature, layers=[0, 1, 2], freeze={"embeddings": True, "layers": 2})
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = build_optimizer(net, load_recipe({}).train.optimizer)
    x = _packed(feature, articles[:4])
    torch.nn.functional.cross_entropy(net.train()(x), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    after = net.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen = [k for k in before if ".embeddings." in k or ".layer.0." in k or ".layer.1." in k]
    assert frozen and not changed & set(frozen)
    assert any(".layer.2." in k for k in changed) and "hf.classifier.weight" in changed


def test_gradient_checkpointing_gives_the_same_gradients(feature, articles) -> None:
    x, y = _packed(feature, articles[:4]), torch.tensor([0, 1, 2, 3])
    grads = []
    for ckpt in (False, True):
        net = _build(feature, layers=[0, 1], gradient_checkpointing=ckpt,
                     freeze={"embeddings": True})
        assert any(getattr(m, "gradient_checkpointing", False) for m in net.hf.modules()) == ckpt
        torch.manual_seed(1)  # the same dropout draws (recomputation replays the RNG)
        torch.nn.functional.cross_entropy(net.train()(x), y).backward()
        grads.append({n: p.grad for n, p in net.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n


def test_a_missing_or_incomplete_pretrained_folder_names_model_pretrained(feature,
                                                                         tmp_path) -> None:
    with pytest.raises(RecipeError) as info:
        _build(feature, pretrained=str(tmp_path / "nowhere"))
    assert info.value.path == "model.pretrained" and "never downloaded" in str(info.value)
    partial = tmp_path / "partial"
    shutil.copytree(resolve_pretrained("minilm"), partial,
                    ignore=shutil.ignore_patterns("tokenizer.json"))
    with pytest.raises(RecipeError, match="lacks tokenizer.json") as info:
        FAMILY.bind(TransformerConfig(pretrained=str(partial)), [TextFeature("t", ["t"])])
    assert info.value.path == "model.pretrained"


def test_lora_on_a_module_the_model_lacks_lists_the_names(feature) -> None:
    with pytest.raises(RecipeError) as info:
        apply_lora(_build(feature, layers=[0]), LoraConfig(targets=["q_proj"]))
    assert info.value.path == "train.lora.targets" and "query" in str(info.value)


def test_recipe_errors_for_transformer_keys() -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe({"model": {"arch": "transformer", "layers": [2, 1]}})
    assert info.value.path == "model.layers" and "increasing order" in str(info.value)
    with pytest.raises(RecipeError) as info:
        load_recipe({"model": {"arch": "transformer", "max_lenght": 64}})
    assert info.value.path == "model.max_lenght" and "max_length" in str(info.value)
    with pytest.raises(RecipeError) as info:
        load_recipe({"model": {"arch": "transformr"}})
    assert info.value.path == "model.arch" and "did you mean 'transformer'?" in str(info.value)
