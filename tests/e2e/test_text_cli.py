"""The session's tiny text run through real `danlu` subprocesses: its train stage wrote a model
folder of the contract, evaluate scored it, `danlu report` shows texts, `danlu run --resume`
exports the package again with only the export stage run, and `danlu evaluate RUN|PACKAGE
--data jsonl:...` scores new texts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from danlu.data.stage import load_splits
from danlu.models.hf import load_text_classifier
from danlu.models.load import load_model
from danlu.models.packaged import predict
from danlu.runs import Run, read_json
from tests.textdata import CLASSES, bbc_texts, write_jsonl

DANLU = str(Path(sys.executable).with_name("danlu"))
ENV = {**os.environ, "COLUMNS": "200"}


def _danlu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DANLU, *args], capture_output=True, text=True, timeout=600, env=ENV,
                          check=False)


def test_train_writes_a_model_folder_of_the_contract(text_run) -> None:
    folder = text_run.run_dir / "train" / "model"
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.json", "model.safetensors", "tokenizer.json"]
    spec = read_json(folder / "model.json")
    assert spec["format"] == 2 and spec["family"] == "transformer"
    assert spec["config"]["max_length"] == 32 and spec["config"]["layers"] == [0, 1]
    assert spec["features"] == [{"name": "text", "type": "text", "columns": ["text"],
                                 "options": {}, "state": {"tokenizer": "tokenizer.json",
                                                          "max_length": 32}}]
    assert spec["head"] == {"type": "category", "column": "label", "labels": CLASSES}
    config = read_json(folder / "config.json")  # a Hugging Face folder any HF tool reads
    assert config["id2label"] == {str(i): n for i, n in enumerate(CLASSES)}
    assert config["num_hidden_layers"] == 2
    hf = load_text_classifier(folder)
    assert all(v.dtype == torch.float32 for v in hf.state_dict().values())


def test_evaluate_scored_the_saved_model_with_intervals(text_run) -> None:
    test = read_json(text_run.run_dir / "eval" / "metrics.json")["test"]
    assert test["accuracy"] > 0.4  # 5 classes, chance is 0.2; 118 training texts of 32 tokens
    lo, hi = test["ci"]["accuracy"]
    assert lo <= test["accuracy"] <= hi
    with np.load(text_run.run_dir / "eval" / "predictions.npz", allow_pickle=False) as z:
        probs, rows, x = z["probs"], z["rows"], z["x"]
    assert x.dtype.kind == "U" and x.dtype.itemsize <= 300 * 4
    # what evaluation scored is what the model folder's Packaged module answers
    splits = load_splits(Run.open(text_run.run_dir))
    assert np.array_equal(rows, splits.rows["test"])
    texts = splits.values["test"]["text"]
    again, _ = predict(load_model(text_run.run_dir / "train" / "model").packaged(),
                       splits.values["test"])
    assert np.abs(again - probs).max() < 1e-5
    assert all(texts[i].startswith(x[i][:50]) for i in range(len(x)))


@pytest.mark.slow
def test_the_report_shows_texts_and_resume_exports_the_package_again(text_run,
                                                                     tmp_path: Path) -> None:
    run = tmp_path / text_run.run_dir.name  # a copy: the session's run stays as it is
    shutil.copytree(text_run.run_dir, run)
    r = _danlu("report", str(run))
    assert r.returncode == 0, r.stderr
    html = (run / "report.html").read_text()
    assert "Worst mistakes" in html and "<th>text</th>" in html
    shutil.rmtree(run / "package")
    manifest = read_json(run / "manifest.json")
    del manifest["stages"]["export"]  # as if the run had stopped before its export stage
    (run / "manifest.json").write_text(json.dumps(manifest))
    r = _danlu("run", "--resume", str(run), "export.latency_runs=3")
    assert r.returncode == 0, r.stderr
    for stage in ("data", "train", "evaluate"):
        assert f"{stage} cached" in r.stderr, r.stderr
    meta = read_json(run / "package" / "danlu-model.json")
    assert meta["runtime"] in meta["runtimes"] and (run / "package" / "tokenizer.json").is_file()
    assert set(meta["runtimes"]) == {"torch", "onnxruntime", "onnxruntime-int8"}
    assert "parity label agreement" in r.stdout


def test_danlu_evaluate_scores_new_texts_with_the_run_and_with_the_package(text_run,
                                                                           tmp_path: Path) -> None:
    """New BBC articles as JSON lines, scored by the run (its float32 torch model) and by its
    package (the package's default runtime, as `danlu serve` loads it): metrics with intervals,
    and the accuracy that model gives those texts in this process."""
    from danlu.serve import ServeConfig, load_package
    from danlu.serve.runtimes import load_runtime

    texts, y = bbc_texts(300, 8)
    src = write_jsonl(tmp_path / "new news.jsonl", texts, y)
    values = {"text": np.array(texts, dtype=object)}
    before = torch.get_num_threads()
    try:
        runtime = load_runtime(load_package(text_run.package_dir), ServeConfig())
        expected = {
            "run": predict(load_model(text_run.run_dir / "train" / "model").packaged(),
                           values)[0].argmax(1),
            "package": runtime.run(values)["probabilities"].argmax(1)}
    finally:
        torch.set_num_threads(before)
    for name, path in (("run", text_run.run_dir), ("package", text_run.package_dir)):
        target = tmp_path / f"{name}.json"
        r = _danlu("evaluate", str(path), "--data", f"jsonl:{src}", "--out", str(target))
        assert r.returncode == 0, r.stderr
        assert "rows: 40 read, 40 scored" in r.stdout
        got = read_json(target)
        assert got["source"] == f"jsonl:{src}" and got["model"].startswith(name)
        lo, hi = got["ci"]["accuracy"]
        assert got["n"] == 40 and lo <= got["accuracy"] <= hi
        assert got["accuracy"] == pytest.approx(float((expected[name] == y).mean()), abs=1e-6)
    assert not list((text_run.run_dir / "eval").glob("external-*"))  # --out was given
