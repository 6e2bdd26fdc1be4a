"""A tiny text recipe through real `danlu` subprocesses: train writes the HF folder and
model.json of the contract, evaluate scores it, the report shows text, a resumed run exports the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from danlu.models.text import TextPackaged, load_text_classifier, predict_texts

from danlu.data.readers import CorpusReader
from danlu.data.stage import load_splits
from danlu.data.tokenize import TextEncoder
from danlu.runs import Run, read_json

DANLU = str(Path(sys.executable).with_name("danlu"))
ENV = {**os.environ, "COLUMNS": "120"}


def _danlu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DANLU, *args], capture_output=True, text=True, timeout=600, env=ENV,
                          check=False)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """250 BBC articles (50 a class) as JSON lines; MiniLM cut to 1 layer, 48 tokens, 3 epochs."""
    tmp = tmp_path_factory.mktemp("text")
    chunk = next(CorpusReader("bbc_news", 10_000).chunks())
    pick = np.concatenate([np.flatnonzero(chunk.labels == k)[:50] for k in range(5)])
    names = ["business", "entertainment", "politics", "sports", "tech"]
    (tmp / "news.jsonl").write_text("".join(
        json.dumps({"text": chunk.text[i], "label": names[chunk.labels[i]]}) + "\n" for i in pick))
    (tmp / "text.yaml").write_text(f"""
name: tinytext
data: {{source: "jsonl:{tmp / 'news.jsonl'}", split: {{val: 0.2, test: 0.2}}}}
model: {{arch: transformer, pretrained: minilm, max_length: 48, layers: [0],
         freeze: {{embeddings: true}}}}
train: {{epochs: 3, batch_size: 16, precision: bf16, optimizer: {{name: adamw, lr: 0.002}},
         schedule: {{name: linear, warmup_epochs: 0.5}}, checkpoint: {{keep_last: 1}}}}
evaluate: {{bootstrap: {{resamples: 200}}}}
""")
    r = _danlu("run", str(tmp / "text.yaml"), "--until", "evaluate", "--out", str(tmp / "runs"))
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "export" not in r.stderr
    (run_dir,) = (tmp / "runs").iterdir()
    return run_dir


@pytest.mark.slow
def test_train_writes_the_hf_folder_and_model_json_of_the_contract(text_run):
    files = sorted(p.name for p in (text_run / "train" / "model").iterdir())
    assert files == ["config.json", "model.safetensors", "tokenizer.json"]
    spec = read_json(text_run / "train" / "model.json")
    assert spec["arch"] == "transformer" and spec["folder"] == "model" and spec["max_length"] == 48
    assert spec["labels"] == ["business", "entertainment", "politics", "sports", "tech"]
    assert spec["layers"] == [0] and spec["lora"] is None and Path(spec["pretrained"]).is_dir()
    config = read_json(text_run / "train" / "model" / "config.json")
    assert config["id2label"] == {str(i): n for i, n in enumerate(spec["labels"])}
    assert config["num_hidden_layers"] == 1
    hf = load_text_classifier(text_run / "train" / "model")
    assert all(v.dtype == torch.float32 for v in hf.state_dict().values())


@pytest.mark.slow
def test_evaluate_scores_the_saved_model_with_intervals(text_run):
    metrics = read_json(text_run / "eval" / "metrics.json")
    test = metrics["test"]
    assert test["accuracy"] > 0.6  # 5 classes, chance is 0.2
    lo, hi = test["ci"]["accuracy"]
    assert lo <= test["accuracy"] <= hi
    with np.load(text_run / "eval" / "predictions.npz", allow_pickle=False) as z:
        probs, rows, x = z["probs"], z["rows"], z["x"]
    assert x.dtype.kind == "U" and x.dtype.itemsize <= 300 * 4
    # what evaluation scored is what TextPackaged over train/model/ gives
    splits = load_splits(Run.open(text_run))
    assert np.array_equal(rows, splits.rows["test"])
    enc = TextEncoder.from_folder(text_run / "train" / "model", 48)
    again = predict_texts(TextPackaged(load_text_classifier(text_run / "train" / "model")), enc,
                          splits.x["test"])
    assert np.abs(again - probs).max() < 1e-5
    assert all(splits.x["test"][i].startswith(x[i][:50]) for i in range(len(x)))


@pytest.mark.slow
def test_the_report_shows_texts_and_resume_exports_the_package(text_run):
    r = _danlu("report", str(text_run))
    assert r.returncode == 0, r.stderr
    html = (text_run / "report.html").read_text()
    assert "Worst mistakes" in html and "<th>text</th>" in html
    r = _danlu("run", "--resume", str(text_run), "export.latency_runs=3")
    assert r.returncode == 0, r.stderr
    assert "train cached" in r.stderr and "evaluate cached" in r.stderr
    meta = read_json(text_run / "package" / "danlu-model.json")
    assert meta["runtime"] in meta["runtimes"] and (text_run / "package" / "tokenizer.json").is_file()
    assert "parity label agreement" in r.stdout
