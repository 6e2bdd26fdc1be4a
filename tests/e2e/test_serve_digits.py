"""`danlu serve` on the digits run: raw pixels over real HTTP give danlu's own test labels."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from danlu.data.stage import load_splits
from danlu.models.load import load_packaged
from danlu.runs import Run
from tests.serve.conftest import free_port

DANLU = str(Path(sys.executable).with_name("danlu"))


@pytest.fixture(scope="module")
def digits_server(digits_run, tmp_path_factory):
    """The real CLI: `danlu serve RUN_DIR --port P`, given the run folder (not the package)."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "server.log"
    with log.open("wb") as f:
        proc = subprocess.Popen([DANLU, "serve", str(digits_run.run_dir), "--port", str(port)],
                                stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"danlu serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"danlu serve never became ready: {log.read_text()}")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def test_split(digits_run):
    s = load_splits(Run.open(digits_run.run_dir))
    x = s.values["test"]["pixels"]
    with torch.inference_mode():
        _, own = load_packaged(digits_run.run_dir / "train/model")(torch.from_numpy(x))
    return x, own.numpy()


def test_v2_infer_with_raw_fp32_pixels_matches_danlus_evaluation(digits_server, test_split):
    x, own_labels = test_split
    body = {"id": "digits-test", "inputs": [{"name": "pixels", "shape": list(x.shape),
                                             "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = httpx.post(f"{digits_server}/v2/models/digits/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert r.json()["id"] == "digits-test"
    assert out["label"]["shape"] == [len(x)]
    assert np.array_equal(np.array(out["label"]["data"]), own_labels)


def test_v2_infer_accepts_int64_pixels_nested(digits_server, test_split):
    x, own_labels = test_split
    rows = x[:16].astype(np.int64)  # digits pixels are integers 0..16: INT64 -> FP32 is exact
    body = {"inputs": [{"name": "pixels", "shape": [16, 64], "datatype": "INT64",
                        "data": rows.tolist()}], "outputs": [{"name": "label"}]}
    r = httpx.post(f"{digits_server}/v2/models/digits/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    (label,) = r.json()["outputs"]
    assert label["name"] == "label" and label["data"] == own_labels[:16].tolist()


def test_v1_predict_gives_label_names_and_probabilities(digits_server, test_split):
    x, own_labels = test_split
    r = httpx.post(f"{digits_server}/v1/models/digits:predict",
                   json={"instances": x[:5].tolist()}, timeout=30)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == [str(v) for v in own_labels[:5]]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in preds)


def test_metadata_declares_the_package_contract(digits_server):
    meta = httpx.get(f"{digits_server}/v2/models/digits").json()
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert {o["name"] for o in meta["outputs"]} == {"probabilities", "label"}


def test_wrong_shape_is_a_400_and_the_server_stays_up(digits_server):
    body = {"inputs": [{"name": "pixels", "shape": [1, 63], "datatype": "FP32",
                        "data": [0.0] * 63}]}
    r = httpx.post(f"{digits_server}/v2/models/digits/infer", json=body)
    assert r.status_code == 400 and "64" in r.json()["error"]
    assert httpx.get(f"{digits_server}/v2/health/live").status_code == 200
