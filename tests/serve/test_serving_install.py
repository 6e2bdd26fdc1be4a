"""A serving-only install (issue 15, item 2): in a fresh venv, `pip install '.[serve]'` brings no
torch and no transformers, and the installed `danlu serve` answers for ONNX packages (digits; the
iris table with raw rows) with the full protocol. The oracle is the runs' own evaluation."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import (
    Evaluation,
    _wait_ready,
    digits_body,
    free_port,
    metric,
    outputs_by_name,
    probabilities,
    text_body,
)
from .test_raw_rows import ATOL, COLUMNS, NUMBERS, raw_rows, v1_probabilities

ROOT = Path(__file__).resolve().parents[2]


def serving_venv(where: Path) -> Path:
    """A clean venv (no system site-packages) with danlu installed from a copy of this checkout's
    sources (pyproject.toml, README.md, src/: nothing is built inside the checkout) and only the
    `serve` extra. pip's wheel cache makes a second build quick. Returns the venv's bin/."""
    src = where / "danlu-src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          f"{src}[serve]"], capture_output=True, text=True, timeout=900,
                         check=False, env=_clean_env())
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv / "bin"


def _clean_env() -> dict[str, str]:
    """This environment without the test run's PYTHONPATH (pointing at the checkout's src/) or
    venv: the venv's danlu must be the installed copy."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@contextlib.contextmanager
def venv_server(bin_dir: Path, logs: Path, *args: str) -> Iterator[str]:
    """The venv's own `danlu serve ARGS` on a free loopback port; its URL once ready."""
    port = free_port()
    logs.mkdir()
    with open(logs / "out.txt", "wb") as out, open(logs / "err.txt", "wb") as err:
        proc = subprocess.Popen([str(bin_dir / "danlu"), "serve", *args, "--port", str(port),
                                 "--threads", "1"], stdout=out, stderr=err, env=_clean_env())
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, logs)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_serving_only_install_serves_onnx_packages_without_torch(
        tmp_path: Path, digits_package: Path, table_package: Path, text_package: Path,
        digits_eval: Evaluation, table_eval: Evaluation, text_eval: Evaluation) -> None:
    bin_dir = serving_venv(tmp_path)
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import importlib.util as u, danlu; print(danlu.__file__, "
         "[m for m in ('torch', 'transformers', 'peft', 'optuna') if u.find_spec(m)])"],
        capture_output=True, text=True, timeout=60, check=False, env=_clean_env())
    assert probe.returncode == 0, probe.stderr
    where, present = probe.stdout.split(" ", 1)
    assert where.startswith(str(tmp_path / "venv")) and present.strip() == "[]", probe.stdout
    no_torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True,
                              text=True, timeout=60, check=False, env=_clean_env())
    assert no_torch.returncode == 1 and "No module named 'torch'" in no_torch.stderr

    with venv_server(bin_dir, tmp_path / "logs", str(digits_package), str(table_package)) as url, \
            httpx.Client(base_url=url, timeout=30.0) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/models/digits/ready").status_code == 200
        # digits: v2 JSON, as evaluation scored the test split
        out = outputs_by_name(c.post("/v2/models/digits/infer",
                                     json=digits_body(digits_eval.values["pixels"])))
        np.testing.assert_allclose(probabilities(out), digits_eval.probs, atol=ATOL)
        # the table: raw rows, v2 one input per column (strings, numbers, nulls) and /v1
        rows = raw_rows(table_eval)
        body = {"inputs": [{"name": col, "datatype": "FP32" if col in NUMBERS else "BYTES",
                            "shape": [len(rows)], "data": [r[col] for r in rows]}
                           for col in COLUMNS]}
        out = outputs_by_name(c.post("/v2/models/iris/infer", json=body))
        np.testing.assert_array_equal(out["label"]["data"], table_eval.labels)
        np.testing.assert_allclose(probabilities(out), table_eval.probs, atol=ATOL)
        v1 = c.post("/v1/models/iris:predict", json={"instances": rows})
        np.testing.assert_allclose(v1_probabilities(v1), table_eval.probs, atol=ATOL)
        assert c.get("/v2/models/iris").json()["inputs"][-1]["name"] == "garden"
        page = c.get("/")
        assert page.status_code == 200 and "danlu playground" in page.text
        assert metric(url, "danlu_requests_total", model="iris", status="200") == 2  # v2 + v1

    # a text package: tokenized by `tokenizers` in the server, fp32 ONNX Runtime
    texts = text_eval.values["text"].tolist()
    name = json.loads((text_package / "danlu-model.json").read_text())["name"]
    with venv_server(bin_dir, tmp_path / "text-logs", str(text_package), "--runtime",
                     "onnxruntime") as url:
        out = outputs_by_name(httpx.post(f"{url}/v2/models/{name}/infer", json=text_body(texts),
                                         timeout=120))
    np.testing.assert_allclose(probabilities(out), text_eval.probs, atol=ATOL)

