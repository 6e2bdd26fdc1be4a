"""`danlu compress` on a digits run: every variant, pareto.json, a promoted package that
`danlu serve` serves over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from danlu.data.stage import load_splits
from danlu.runs import Run
from tests.serve.conftest import free_port

DANLU = str(Path(sys.executable).with_name("danlu"))
DEFAULT_VARIANTS = ["pruned80", "slim50", "int8", "student", "student-int8"]


@pytest.fixture(scope="module")
def compressed(small_run, tmp_path_factory):
    """The session's small digits run, copied (promotion replaces the copy's package), compressed
    by a real `danlu compress`."""
    from tests.compress.conftest import copy_run

    run_dir = copy_run(small_run.run_dir, tmp_path_factory.mktemp("compressed") / "run")
    # The default variant names with shorter fine-tuning, given as a YAML override (2 shared cores).
    short = ("compress.variants=[{name: pruned80, prune: {sparsity: 0.8, finetune_epochs: 2}}, "
             "{name: slim50, prune: {method: structured, ratio: 0.5, finetune_epochs: 2}}, "
             "{name: int8, quantize: {mode: static}}, {name: student, distill: {epochs: 8}}, "
             "{name: student-int8, from: student, quantize: {mode: static}}]")
    r = subprocess.run([DANLU, "compress", str(run_dir), "compress.promote=true", short,
                        "compress.latency.runs=40"],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr + r.stdout
    return run_dir, json.loads((run_dir / "compress" / "pareto.json").read_text()), r


@pytest.mark.slow
def test_compress_makes_every_variant_with_measurements(compressed):
    run_dir, report, proc = compressed
    names = [v["name"] for v in report["variants"]]
    assert names == ["baseline", *DEFAULT_VARIANTS]
    for v in report["variants"]:
        folder = run_dir / v["dir"]
        for f in ("model.onnx", "danlu-model.json", "README.md", "predictions.npz", "compression.json"):
            assert (folder / f).is_file(), (v["name"], f)
        meta = json.loads((folder / "danlu-model.json").read_text())
        assert v["runtime"] == meta["runtime"] == "onnxruntime"  # the CNN family's one runtime
        if v["name"] in ("pruned80", "slim50", "student"):  # torch steps: model folders
            assert json.loads((folder / "model" / "model.json").read_text())["family"] == "cnn"
        with np.load(folder / "predictions.npz", allow_pickle=False) as z:
            assert z["probabilities"].shape == (360, 10) and z["labels"].shape == (360,)
            assert v["accuracy"] == pytest.approx(float((z["labels"] == z["y"]).mean()))
        assert v["b1_ms"] > 0 and v["b32_ms"] > 0 and v["params"] >= v["nonzero_params"] > 0
    rows = {v["name"]: v for v in report["variants"]}
    assert rows["pruned80"]["nonzero_params"] < 0.25 * rows["pruned80"]["params"]
    assert rows["pruned80"]["deflated_bytes"] < 0.5 * rows["baseline"]["deflated_bytes"]
    assert (run_dir / "compress" / "pruned80" / "model.onnx.zip").is_file()
    assert rows["slim50"]["params"] < rows["baseline"]["params"] / 3
    assert rows["student"]["params"] < rows["baseline"]["params"] / 3
    # Each gate decision matches its own numbers; a rejected variant is never chosen.
    for name in DEFAULT_VARIANTS:
        g = rows[name]["vs_parent"]
        speed, acc = g["speed"], g["accuracy"]
        assert speed["passed"] == (speed["b32_ms"] <= speed["parent_b32_ms"] * (1 + speed["tolerance"]))
        assert acc["passed"] == (acc["drop"] <= acc["max_accuracy_drop"] + 1e-12
                                 and acc["label_agreement_with_parent"] >= acc["min_label_agreement"])
        assert rows[name]["passed"] == (speed["passed"] and acc["passed"])
        # The difference to the baseline comes with a paired interval and McNemar's test.
        vs = rows[name]["vs_baseline"]
        assert vs["accuracy_diff"] == pytest.approx(rows[name]["accuracy"] - rows["baseline"]["accuracy"],
                                                 abs=1e-6)
        assert vs["ci"][0] <= vs["accuracy_diff"] <= vs["ci"][1] and 0 <= vs["mcnemar_p"] <= 1
        assert vs["significantly_worse"] == (vs["ci"][1] < 0)
        if not rows[name]["passed"]:
            assert report["chosen"] != name and f"{name} rejected" in proc.stderr
    distill = json.loads((run_dir / "compress" / "student" / "compression.json").read_text())["distill"]
    assert distill["without_distillation"]["training"]["epochs"] == distill["training"]["epochs"]
    assert (run_dir / "compress" / "student" / "undistilled" / "predictions.npz").is_file()
    # The gain over the same student trained alone, from both prediction files, with its CI.
    with np.load(run_dir / "compress" / "student" / "undistilled" / "predictions.npz") as z0, \
            np.load(run_dir / "compress" / "student" / "predictions.npz") as z1:
        acc0, acc1 = float((z0["labels"] == z0["y"]).mean()), float((z1["labels"] == z1["y"]).mean())
    gain = rows["student"]["distillation_gain"]
    assert gain == distill["gain"] and gain["undistilled_accuracy"] == pytest.approx(acc0)
    assert gain["accuracy_gain"] == pytest.approx(acc1 - acc0, abs=1e-6)
    assert gain["ci"][0] <= gain["accuracy_gain"] <= gain["ci"][1]
    assert gain["significant"] == (gain["ci"][0] > 0) and "distillation gain" in proc.stdout
    assert set(report["front"]) <= {r for r in rows if rows[r]["passed"]}


@pytest.mark.slow
def test_promoted_variant_is_served_over_http(compressed):
    run_dir, report, _ = compressed
    chosen = report["chosen"]
    assert report["promoted"] == (chosen != "baseline")
    pkg = json.loads((run_dir / "package" / "danlu-model.json").read_text())
    if chosen != "baseline":
        assert (run_dir / "package.orig" / "danlu-model.json").is_file()
        assert pkg["version"].endswith(chosen)
    with np.load(run_dir / "compress" / chosen / "predictions.npz", allow_pickle=False) as z:
        expected = z["labels"]
    x = load_splits(Run.open(run_dir)).values["test"]["pixels"]
    port = free_port()
    proc = subprocess.Popen([DANLU, "serve", str(run_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        meta = httpx.get(f"{url}/v2/models/digits").json()
        assert meta["versions"] == [pkg["version"]] or pkg["version"] in json.dumps(meta)
        body = {"inputs": [{"name": "pixels", "shape": list(x.shape), "datatype": "FP32",
                            "data": x.ravel().tolist()}]}
        r = httpx.post(f"{url}/v2/models/digits/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        out = {o["name"]: o for o in r.json()["outputs"]}
        assert np.array_equal(np.array(out["label"]["data"]), expected)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
