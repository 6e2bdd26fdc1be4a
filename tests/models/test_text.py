"""Text models: the deployable module's outputs, LoRA merge parity, layer subsets, freezing,
and clear errors for bad pretrained folders — on MiniLM and real BBC News articles."""

from __future__ import annotations

import shutil

import pytest
import torch
from danlu.models.text import (
    TextPackaged,
    apply_lora,
    encode_texts,
    encoder_layers,
    load_text_classifier,
    merged,
    resolve_pretrained,
    save_text_model,
)
from safetensors import safe_open

from danlu.data.readers import CorpusReader
from danlu.data.tokenize import TextEncoder
from danlu.errors import RecipeError
from danlu.models import InputSpec, build_model
from danlu.models.config import TransformerConfig
from danlu.recipe import load_recipe
from danlu.train.config import LoraConfig
from danlu.train.optim import build_optimizer

LABELS = ["business", "entertainment", "politics", "sports", "tech"]


@pytest.fixture(scope="module")
def articles() -> list[str]:
    """Real BBC News articles: a few of every class."""
    chunk = next(CorpusReader("bbc_news", 10_000).chunks())
    return [str(chunk.text[i]) for i in range(0, 2225, 150)]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.from_folder(resolve_pretrained("minilm"), 48)


def _model(**cfg) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TransformerConfig(**cfg), InputSpec(0), len(LABELS))


def test_text_packaged_gives_probabilities_and_labels(articles, encoder):
    model = _model(layers=[0])
    enc = encoder.encode(articles[:6])
    probs, label = TextPackaged(model.hf.eval())(torch.from_numpy(enc.input_ids),
                                                 torch.from_numpy(enc.attention_mask))
    assert probs.dtype == torch.float32 and probs.shape == (6, 5) and label.dtype == torch.int64
    assert torch.allclose(probs.sum(1), torch.ones(6)) and torch.equal(label, probs.argmax(1))


def test_packed_batches_are_cut_to_their_longest_text(encoder):
    texts = ["short one", "a somewhat longer text about the markets today", "mid length text"]
    x = encode_texts(encoder, texts)
    model = _model(layers=[0]).eval()
    with torch.inference_mode():
        logits = model(x[[0, 2]])  # the batch's longest is 5 tokens, the split's 11
        alone = encoder.encode([texts[0], texts[2]])
        ref = model.hf(input_ids=torch.from_numpy(alone.input_ids),
                       attention_mask=torch.from_numpy(alone.attention_mask)).logits
    assert alone.input_ids.shape[1] < x.shape[2]
    assert torch.equal(logits, ref)


def test_lora_merge_matches_the_adapter_model_on_real_text(tmp_path, articles, encoder):
    model = _model(layers=[0, 1])
    with torch.no_grad():  # a trained-size head, so logits are O(1) and differences visible
        model.hf.classifier.weight.normal_(0, 1)
    model = apply_lora(model, LoraConfig(r=4, alpha=8, targets=["query", "value"]))
    with torch.no_grad():  # lora_B starts at zero (a no-op adapter): give it a real update
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    x = encode_texts(encoder, articles)
    model.eval()
    with torch.inference_mode():
        adapted = model(x)
        model.hf.disable_adapter_layers()
        base = model(x)
        model.hf.enable_adapter_layers()
    hf = merged(model)
    assert not any("lora" in k for k in hf.state_dict())
    save_text_model(hf, tmp_path / "model", LABELS, resolve_pretrained("minilm"))
    reloaded = load_text_classifier(tmp_path / "model")
    with torch.inference_mode():
        merged_logits = hf(input_ids=x[:, 0], attention_mask=x[:, 1]).logits
        probs, _ = TextPackaged(reloaded)(x[:, 0], x[:, 1])
    assert (adapted - base).abs().max() > 0.02  # the adapters change the outputs...
    assert (merged_logits - adapted).abs().max() < 1e-4  # ...and merging keeps them
    assert (probs - torch.softmax(adapted, 1)).abs().max() < 1e-5
    assert reloaded.config.id2label == dict(enumerate(LABELS))
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "model.safetensors", "tokenizer.json"]


def test_a_layer_subset_keeps_the_teachers_layers(articles):
    model = _model(layers=[0, 2, 4])
    blocks = encoder_layers(model.hf)
    assert len(blocks) == 3 and model.hf.config.num_hidden_layers == 3
    teacher = resolve_pretrained("minilm") / "model.safetensors"
    with safe_open(str(teacher), "pt") as f:
        for new, old in enumerate([0, 2, 4]):
            for name, p in blocks[new].named_parameters():
                assert torch.equal(p, f.get_tensor(f"encoder.layer.{old}.{name}")), (new, name)
            # and not the layer that used to sit at that position
            q = blocks[new].attention.self.query.weight
            if new != old:
                assert not torch.equal(q, f.get_tensor(f"encoder.layer.{new}.attention.self.query.weight"))


def test_freezing_freezes_embeddings_and_the_lowest_layers():
    model = _model(layers=[0, 1, 2], freeze={"embeddings": True, "layers": 2})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = build_optimizer(model, load_recipe({}).train.optimizer)
    x = torch.tensor([[[101, 2023, 2003, 102], [1, 1, 1, 1]]] * 4)
    torch.nn.functional.cross_entropy(model.train()(x), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen = [k for k in before if ".embeddings." in k or ".layer.0." in k or ".layer.1." in k]
    assert frozen and not changed & set(frozen)
    assert any(".layer.2." in k for k in changed) and "hf.classifier.weight" in changed


def test_a_missing_or_incomplete_pretrained_folder_names_model_pretrained(tmp_path):
    with pytest.raises(RecipeError) as info:
        _model(pretrained=str(tmp_path / "nowhere"))
    assert info.value.path == "model.pretrained" and "never downloaded" in str(info.value)
    partial = tmp_path / "partial"
    shutil.copytree(resolve_pretrained("minilm"), partial, ignore=shutil.ignore_patterns("tokenizer.json"))
    with pytest.raises(RecipeError, match="lacks tokenizer.json") as info:
        _model(pretrained=str(partial))
    assert info.value.path == "model.pretrained"


def test_lora_on_a_module_the_model_lacks_lists_the_names():
    with pytest.raises(RecipeError) as info:
        apply_lora(_model(layers=[0]), LoraConfig(targets=["q_proj"]))
    assert info.value.path == "train.lora.targets" and "query" in str(info.value)


def test_recipe_errors_for_transformer_keys():
    with pytest.raises(RecipeError) as info:
        load_recipe({"model": {"arch": "transformer", "layers": [2, 1]}})
    assert info.value.path == "model.layers"
    with pytest.raises(RecipeError) as info:
        load_recipe({"model": {"arch": "transformer", "max_lenght": 64}})
    assert info.value.path == "model.max_lenght" and "max_length" in str(info.value)
    with pytest.raises(RecipeError) as info:
        load_recipe({"model": {"arch": "transformr"}})
    assert "transformer" in str(info.value)


@pytest.mark.slow
def test_tuning_a_text_model_is_a_clear_recipe_error(tmp_path, articles):
    import json

    import danlu

    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": LABELS[i % 5]}) + "\n"
                            for i, t in enumerate(articles)))
    with pytest.raises(RecipeError) as info:
        danlu.run({"data": {"source": f"jsonl:{path}", "split": {"stratify": False}},
                   "model": {"arch": "transformer", "layers": [0]},
                   "tune": {"trials": 1, "space": {"train.optimizer.lr": {"log_float": [1e-5, 1e-3]}}}},
                  out=tmp_path / "runs")
    assert info.value.path == "tune" and "text" in str(info.value)


def test_gradient_checkpointing_gives_the_same_gradients(articles, encoder):
    x, y = encode_texts(encoder, articles[:4]), torch.tensor([0, 1, 2, 3])
    grads = []
    for ckpt in (False, True):
        model = _model(layers=[0, 1], gradient_checkpointing=ckpt, freeze={"embeddings": True})
        assert model.hf.is_gradient_checkpointing == ckpt
        torch.manual_seed(1)  # the same dropout draws (recomputation replays the RNG)
        torch.nn.functional.cross_entropy(model.train()(x), y).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n
