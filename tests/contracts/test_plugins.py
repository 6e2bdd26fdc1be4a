"""A feature type and a model family added from outside src/ (tests/contracts/toy_plugin.py):
a recipe using them trains, evaluates, exports and is served, with no edit to danlu."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import danlu
from danlu.runs import read_json

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tests.contracts.toy_plugin"


def test_a_plugin_feature_and_family_train_evaluate_and_export(toy_run):
    assert toy_run.stages["export"] == "ran" and toy_run.metrics["test"]["accuracy"] >= 0.9
    meta = read_json(toy_run.package_dir / "danlu-model.json")
    assert [(f["name"], f["type"]) for f in meta["features"]] == [("a", "toy_square"),
                                                                 ("b", "toy_square")]
    assert meta["inputs"] == [{"name": "a", "datatype": "FP32", "shape": [-1, 1]},
                              {"name": "b", "datatype": "FP32", "shape": [-1, 1]}]
    assert meta["runtime"] == "onnxruntime" and meta["parity"]["label_agreement"] == 1.0
    model = read_json(toy_run.run_dir / "train/model/model.json")
    assert model["family"] == "toy_linear"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_danlu_serve_loads_the_plugin_and_answers_like_the_evaluation(toy_run, tmp_path):
    from danlu.data.stage import load_splits

    port = _free_port()
    env = {**os.environ, "DANLU_PLUGINS": PLUGIN,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "danlu.cli", "serve", str(toy_run.run_dir),
                             "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail((tmp_path / "serve.log").read_text())
        s = load_splits(danlu.Run.open(toy_run.run_dir))
        a, b = s.values["test"]["a"], s.values["test"]["b"]
        body = {"inputs": [{"name": n, "datatype": "FP32", "shape": list(v.shape),
                            "data": v.ravel().tolist()} for n, v in (("a", a), ("b", b))]}
        req = urllib.request.Request(f"{url}/v2/models/toy/infer", json.dumps(body).encode(),
                                     {"content-type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=30).read())
        labels = np.array(next(o for o in answer["outputs"] if o["name"] == "label")["data"])
        evaluated = np.load(toy_run.run_dir / "eval/predictions.npz")["probs"].argmax(axis=1)
        assert np.array_equal(labels, evaluated)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_an_installed_distribution_registers_plugins_through_its_entry_point(tmp_path):
    # What `pip install my-danlu-plugin` leaves on sys.path: a dist-info with an entry point
    # in the danlu.plugins group.
    info = tmp_path / "my_danlu_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-danlu-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[danlu.plugins]\ntoy = {PLUGIN}\n")
    code = ("from danlu.features import features; from danlu.models import models; "
            "print('toy_square' in features, 'toy_linear' in models)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env.pop("DANLU_PLUGINS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
