"""The text package's hf/ folder (export.hf, models/hf.py write_hf_folder): transformers'
AutoModelForSequenceClassification and AutoTokenizer load it, with the package's labels as
id2label, and predict what the package predicts — on the session's MiniLM run, and on a run of a
tiny randomly initialised BERT made here (a cased WordPiece vocabulary, LoRA merged, embeddings
frozen) through the real pipeline, which is also `model.pretrained` pointing at any local folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from tests.textdata import CLASSES, bbc_texts


def _texts() -> list[str]:
    """Real articles none of the runs trained on (two per class), a short text and one in
    capitals (a cased vocabulary keeps them apart)."""
    return bbc_texts(60, 2)[0] + ["Shares rose.", "THE PRIME MINISTER SPOKE IN PARLIAMENT"]


def assert_hf_agrees(pkg: Path, texts: list[str], runtime: str = "onnxruntime") -> None:
    """hf/ as a Hugging Face user loads it gives the package's logits, probabilities and
    labels: logits equal to the package's torch model folder, probabilities and labels equal
    to the package served in `runtime` (ONNX Runtime: a second implementation of the weights)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from danlu.models.load import load_model
    from danlu.models.packaged import Encoding
    from danlu.serve import ServeConfig, load_package
    from danlu.serve.runtimes import load_runtime

    meta = json.loads((pkg / "danlu-model.json").read_text())
    hf = pkg / meta["artifacts"]["hf"]
    tok = AutoTokenizer.from_pretrained(hf, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(hf, local_files_only=True).eval()
    assert model.config.id2label == dict(enumerate(meta["labels"]))
    assert model.config.label2id == {name: i for i, name in enumerate(meta["labels"])}
    batch = tok(texts, truncation=True, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape[1] <= meta["features"][0]["state"]["max_length"]
    with torch.inference_mode():
        logits = model(**batch).logits

    danlu_model = load_model(hf)  # the torch runtime's folder is this very one
    x = Encoding(danlu_model.features).network_input({"text": np.array(texts, dtype=object)})
    assert torch.equal(x[:, 0], batch["input_ids"]) and torch.equal(x[:, 1], batch["attention_mask"])
    with torch.inference_mode():
        np.testing.assert_allclose(logits.numpy(), danlu_model.net(x).numpy(), atol=1e-5)

    package = load_package(pkg)
    served = load_runtime(package, ServeConfig(runtime=runtime, intra_op_threads=1))
    out = served.run_rows({"text": np.array(texts, dtype=object)}, ["probabilities", "label"])
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), out["probabilities"], atol=1e-4)
    assert (logits.argmax(-1).numpy() == out["label"]).all()


def _only_safetensors(folder: Path) -> list[str]:
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))], names
    with safe_open(folder / "model.safetensors", "pt") as f:
        return list(f.keys())


def test_the_minilm_package_hf_folder_loads_in_transformers_and_agrees(text_run) -> None:
    pkg = text_run.package_dir
    assert sorted(p.name for p in (pkg / "hf").iterdir()) == [
        "config.json", "model.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json"]
    keys = _only_safetensors(pkg / "hf")
    assert "bert.embeddings.word_embeddings.weight" in keys  # frozen, still part of the weights
    assert "hf/" in (pkg / "README.md").read_text()  # the model card says how to load it
    assert_hf_agrees(pkg, _texts())


def test_export_hf_false_keeps_the_torch_folder_and_writes_no_hf(text_run, tmp_path) -> None:
    from danlu.export.runtimes import write_artifacts
    from danlu.models.load import load_model

    model = load_model(text_run.run_dir / "train" / "model")
    sizes, files = write_artifacts(model, tmp_path, ["torch"], 20, hf=False)
    assert files == {"torch": "torch"} and not (tmp_path / "hf").exists()
    assert not (tmp_path / "torch" / "tokenizer_config.json").exists()  # as train/model/ is
    assert sizes["torch"] == sum(f.stat().st_size for f in model.folder.iterdir())


def tiny_bert(folder: Path, texts: list[str]) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) and a cased WordPiece tokenizer trained
    on `texts`, saved with save_pretrained as any Hugging Face folder is."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, WordPieceTrainer(vocab_size=600, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]").save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def test_any_local_bert_folder_trains_and_its_hf_folder_agrees(tmp_path: Path) -> None:
    """model.pretrained = a folder made here: trained 1 epoch by the pipeline with LoRA on
    query/value and the embeddings frozen, then packaged by export's build_package (the torch
    runtime only, in float32: the ONNX export is the MiniLM run's to test, and the slow part).
    hf/ holds merged plain weights (no adapter left) whose frozen embedding table is the
    pretrained one, and agrees with the package."""
    import danlu
    from danlu.data.stage import load_splits
    from danlu.export.config import ExportConfig
    from danlu.export.package import build_package
    from danlu.models.load import load_model
    from danlu.runs import Run
    from tests.textdata import write_jsonl

    texts, y = bbc_texts(0, 8)
    base = tiny_bert(tmp_path / "tiny-bert", texts)
    recipe = {"name": "tiny-bert",
              "data": {"source": f"jsonl:{write_jsonl(tmp_path / 'bbc.jsonl', texts, y)}",
                       "split": {"val": 0.15, "test": 0.25}},
              "model": {"arch": "transformer", "pretrained": str(base), "max_length": 24,
                        "freeze": {"embeddings": True}},
              "train": {"epochs": 1, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 0.01},
                        "lora": {"r": 4, "alpha": 8, "targets": ["query", "value"]}}}
    run = danlu.run(recipe, out=tmp_path / "runs", until="train")
    test = load_splits(Run.open(run.run_dir)).values["test"]
    before = torch.get_num_threads()
    try:  # measuring sets this process's torch threads
        build_package(pkg := tmp_path / "package", load_model(run.run_dir / "train" / "model"),
                      test, None, ExportConfig(latency_runs=3, torch_dtype="float32", threads=1),
                      runtimes=["torch"], name="tiny-bert")
    finally:
        torch.set_num_threads(before)
    hf = pkg / "hf"
    keys = _only_safetensors(hf)
    assert not [k for k in keys if "lora" in k or "modules_to_save" in k or "base_layer" in k]
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["architectures"] == ["BertForSequenceClassification"] and cfg["hidden_size"] == 32
    assert "peft" not in json.dumps(cfg) and not (hf / "adapter_config.json").exists()
    with safe_open(base / "model.safetensors", "pt") as b, \
            safe_open(hf / "model.safetensors", "pt") as t:
        emb = "embeddings.word_embeddings.weight"
        assert torch.equal(t.get_tensor(f"bert.{emb}"), b.get_tensor(emb))  # frozen, kept
        q = "encoder.layer.0.attention.self.query.weight"
        assert not torch.equal(t.get_tensor(f"bert.{q}"), b.get_tensor(q))  # LoRA merged in
    assert json.loads((pkg / "danlu-model.json").read_text())["labels"] == CLASSES
    assert_hf_agrees(pkg, _texts(), runtime="torch")
