"""Real packages for the server tests, every one written by danlu itself (`danlu.run`):

- digits: the shipped digits recipe (a CNN; one input, `pixels` FP32 [-1, 64]), the session's
  `digits_run`;
- iris: scikit-learn's iris written as CSV with a `garden` category column, an MLP trained 5
  epochs (two inputs: `features` FP32 [-1, 4] and `garden` BYTES [-1]), `table_run` here;
- the session's tiny text run (`text_run`: raw text in, tokenized by the server).

A test that needs a broken package copies one of these and edits the one field or file it is
about (`copy_package`, `fragile_package`). The oracle is the run's own evaluation: the test
split's values (data/clean.parquet through `load_splits`) and the probabilities that the
evaluate stage wrote to eval/predictions.npz, in test-row order (`evaluation`).

Also: a real `python -m danlu.serve` on a free loopback port (`running_server`, `server`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import danlu.serve

SRC = Path(danlu.serve.__file__).resolve().parents[2]
GARDENS = ["edinburgh", "kew", "wisley"]
# The installed console script, as a user types it (`python -m danlu.serve` is the same command).
DANLU_SERVE = (str(Path(sys.executable).with_name("danlu")), "serve")


# ---- the packages --------------------------------------------------------------------------

def write_iris_csv(path: Path) -> Path:
    """scikit-learn's iris as CSV, with a `garden` column (a category: one of GARDENS, blank in
    every 7th row) so that the table model takes two inputs, numbers and a category."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "garden",
                    "species"])
        for i, (x, y) in enumerate(zip(iris.data, iris.target, strict=True)):
            w.writerow([*x.tolist(), GARDENS[i % 3] if i % 7 else "", iris.target_names[y]])
    return path


@pytest.fixture(scope="session")
def table_run(tmp_path_factory: pytest.TempPathFactory):
    """A small table run made by danlu.run (data -> train -> evaluate -> export, ~8 s): the iris
    CSV above, an MLP with one hidden layer of 16, 5 epochs, no gate."""
    import danlu

    d = tmp_path_factory.mktemp("table-run")
    recipe = {"name": "iris",
              "data": {"source": f"csv:{write_iris_csv(d / 'iris.csv')}", "target": "species"},
              "model": {"arch": "mlp", "hidden": [16]},
              "train": {"epochs": 5, "optimizer": {"name": "adam", "lr": 0.02}},
              "evaluate": {"gate": {}}, "export": {"latency_runs": 3}}
    return danlu.run(recipe, out=d / "runs")


@pytest.fixture(scope="session")
def digits_package(digits_run) -> Path:
    return digits_run.package_dir


@pytest.fixture(scope="session")
def table_package(table_run) -> Path:
    return table_run.package_dir


@pytest.fixture(scope="session")
def text_package(text_run) -> Path:
    return text_run.package_dir


@dataclass
class Evaluation:
    """A run's test split as evaluation saw it: raw client values per feature (what a client
    sends), the true labels and the probabilities the evaluate stage computed (float32 torch)."""

    values: dict[str, np.ndarray]
    y: np.ndarray
    probs: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.probs.argmax(1)

    def __len__(self) -> int:
        return len(self.y)


def evaluation(run_dir: Path) -> Evaluation:
    """The oracle: data/clean.parquet's test rows (load_splits) and eval/predictions.npz."""
    from danlu.data.stage import load_splits
    from danlu.runs import Run

    splits = load_splits(Run.open(run_dir))
    with np.load(run_dir / "eval" / "predictions.npz", allow_pickle=False) as z:
        probs, rows = z["probs"], z["rows"]
    assert np.array_equal(rows, splits.rows["test"])  # the same rows, in the same order
    values = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v)
              for k, v in splits.values["test"].items()}
    return Evaluation(values, splits.y["test"], probs)


@pytest.fixture(scope="session")
def digits_eval(digits_run) -> Evaluation:
    return evaluation(digits_run.run_dir)


@pytest.fixture(scope="session")
def table_eval(table_run) -> Evaluation:
    ev = evaluation(table_run.run_dir)
    assert len(set(ev.labels.tolist())) > 1  # an oracle check means something only if labels vary
    return ev


@pytest.fixture(scope="session")
def text_eval(text_run) -> Evaluation:
    return evaluation(text_run.run_dir)


# ---- broken packages: a real one copied, one field or file changed -------------------------

DELETE = object()  # a value for copy_package: remove the key


def _set(doc: Any, path: str, value: Any) -> None:
    """Set `path` ("inputs[0].datatype", "runtimes.torch.dtype") in a JSON document."""
    keys: list[Any] = [int(k) if k.isdigit() else k
                       for k in re.findall(r"[^.\[\]]+", path)]
    for k in keys[:-1]:
        doc = doc[k]
    if value is DELETE:
        del doc[keys[-1]]
    else:
        doc[keys[-1]] = value


def copy_package(src: Path, dst: Path, changes: dict[str, Any] | None = None) -> Path:
    """A copy of the real package `src` at `dst`, with danlu-model.json's keys at the given
    paths set (or DELETEd), written as raw JSON: not validated, since tests break it on purpose."""
    shutil.copytree(src, dst)
    if changes:
        path = dst / "danlu-model.json"
        meta = json.loads(path.read_text(encoding="utf-8"))
        for key, value in changes.items():
            _set(meta, key, value(meta) if callable(value) else value)
        path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return dst


def splice_fragile(model_path: Path, input_name: str, table_size: int, rows: int) -> None:
    """Put two steps in front of a real graph's input (the rest of the graph unchanged):

    - Gather from a table 0..table_size-1 at the input's values (the identity for integers in
      that range): a value outside [-table_size, table_size) is refused by ONNX Runtime with
      INVALID_ARGUMENT, the error the server reports as the client's (400);
    - a Reshape through [rows, width] and back: any other batch size fails inside ONNX Runtime
      (FAIL), the model's own fault (500)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(model_path))
    g = model.graph
    width = g.input[0].type.tensor_type.shape.dim[1].dim_value
    for node in g.node:
        for k, name in enumerate(node.input):
            if name == input_name:
                node.input[k] = "fragile_out"
    g.initializer.extend([
        numpy_helper.from_array(np.arange(table_size, dtype=np.float32), "fragile_table"),
        numpy_helper.from_array(np.array([rows, width], np.int64), "fragile_rows")])
    front = [helper.make_node("Cast", [input_name], ["fragile_idx"], to=TensorProto.INT64),
             helper.make_node("Gather", ["fragile_table", "fragile_idx"], ["fragile_g"], axis=0),
             helper.make_node("Reshape", ["fragile_g", "fragile_rows"], ["fragile_fixed"]),
             helper.make_node("Shape", [input_name], ["fragile_shape"]),
             helper.make_node("Reshape", ["fragile_fixed", "fragile_shape"], ["fragile_out"])]
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(front + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(model_path))


@pytest.fixture(scope="session")
def fragile_package(digits_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that fails at run time: a copy of the digits package named "fragile", whose
    model.onnx has `splice_fragile`'s two steps in front. For batches of 2 with pixels in the
    digits' range 0..16 it answers exactly as digits; a pixel of 17 or more is refused (400);
    any batch but 2 makes it fail (500)."""
    pkg = copy_package(digits_package, tmp_path_factory.mktemp("fragile") / "fragile",
                       {"name": "fragile"})
    splice_fragile(pkg / "model.onnx", "pixels", table_size=17, rows=2)
    return pkg


# ---- request data ----------------------------------------------------------------------------

def v2_tensor(name: str, values: Any, datatype: str = "FP32") -> dict[str, Any]:
    arr = np.asarray(values)
    data = arr.ravel().tolist()
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}


def digits_body(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    """A v2 infer request for the digits model: flat FP32 pixels."""
    return {"inputs": [v2_tensor("pixels", rows)], **extra}


def table_body(values: dict[str, np.ndarray], **extra: Any) -> dict[str, Any]:
    """A v2 infer request for the iris model: the numbers FP32, the garden as BYTES strings."""
    return {"inputs": [v2_tensor("features", values["features"]),
                       v2_tensor("garden", values["garden"].astype(str), "BYTES")], **extra}


def text_body(texts: list[Any], **extra: Any) -> dict[str, Any]:
    """A JSON v2 request with one BYTES tensor "text"."""
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                        "data": texts}], **extra}


def outputs_by_name(resp: httpx.Response) -> dict[str, dict]:
    """The response's outputs keyed by name (asserting a 200)."""
    assert resp.status_code == 200, resp.text
    return {o["name"]: o for o in resp.json()["outputs"]}


def probabilities(out: dict[str, dict]) -> np.ndarray:
    p = out["probabilities"]
    return np.reshape(p["data"], p["shape"])


# ---- servers -----------------------------------------------------------------------------------

def free_port() -> int:
    """A loopback port nobody holds right now (the OS picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **(extra or {}), "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


@contextlib.contextmanager
def running_server(paths: list[Path], *args: str, env: dict[str, str] | None = None,
                   logs: Path | None = None, port: int | None = None,
                   program: tuple[str, ...] = (sys.executable, "-m", "danlu.serve"),
                   ) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `python -m danlu.serve PATHS ARGS` on a free port; stopped (SIGTERM) at exit.
    With `port`, the caller has told the server that port itself (recipe, override or flag)."""
    own = logs is None  # a temporary folder of ours: removed at exit
    logs = logs or Path(tempfile.mkdtemp(prefix="danlu-serve-"))
    if port is None:
        port = free_port()
        args = ("--port", str(port), *args)
    cmd = [*program, *map(str, paths), *args]
    with open(logs / "out.txt", "wb") as out, open(logs / "err.txt", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_env(env))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, logs)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if own:
            shutil.rmtree(logs, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, url: str, logs: Path, timeout: float = 120.0) -> None:
    """Poll /v2/health/ready until 200; fail with the server's output if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    output = (logs / "out.txt").read_text() + (logs / "err.txt").read_text()
    pytest.fail(f"server did not become ready (exit code {proc.poll()}):\n{output}")


@pytest.fixture(scope="session")
def server_process(digits_run, table_package: Path, fragile_package: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One real `python -m danlu.serve` for most tests: the digits RUN folder (served from its
    package/), the iris package and the fragile copy of digits. Yields (base URL, log folder)."""
    logs = tmp_path_factory.mktemp("server-logs")
    with running_server([digits_run.run_dir, table_package, fragile_package], "--threads", "1",
                        logs=logs) as (url, _):
        yield url, logs


@pytest.fixture(scope="session")
def server(server_process: tuple[str, Path]) -> str:
    """The running server's base URL, e.g. http://127.0.0.1:54321."""
    return server_process[0]


@pytest.fixture(scope="session")
def client(server: str) -> Iterator[httpx.Client]:
    """An httpx client bound to the running server."""
    with httpx.Client(base_url=server, timeout=30.0) as c:
        yield c


def metric(url: str, name: str, **labels: str) -> float:
    """One sample's value from GET /metrics (0 when absent)."""
    text = httpx.get(f"{url}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # prometheus sorts
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(want)}\}})? (\S+)$" if want else \
        rf"^{re.escape(name)} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def wait_metric(url: str, name: str, value: float, timeout: float = 60.0, **labels: str) -> None:
    """Poll /metrics until the sample equals `value` (a state, not a sleep, under any load)."""
    deadline = time.monotonic() + timeout
    while metric(url, name, **labels) != value:
        assert time.monotonic() < deadline, f"{name}{labels} never reached {value}"
        time.sleep(0.02)


# ---- a slow model: the text package, whose time grows with the texts sent --------------------

@dataclass
class Slow:
    """The text package served by ONNX Runtime fp32 on one thread: `body(n)` is n BBC articles
    (each cut to 32 tokens), about 4 ms of model time per article here."""

    package: Path
    name: str
    texts: list[str]
    args: tuple[str, ...] = ("--runtime", "onnxruntime", "--threads", "1",
                             "--inference-workers", "1", "--max-batch-size", "8192")

    def body(self, n: int) -> dict[str, Any]:
        return text_body([self.texts[i % len(self.texts)] for i in range(n)])

    def url(self, base: str) -> str:
        return f"{base}/v2/models/{self.name}/infer"


# Texts per request that hold the one inference slot for a second or more here.
SLOW_TEXTS = 400


@pytest.fixture(scope="session")
def slow(text_package: Path) -> Slow:
    from tests.textdata import bbc_texts

    name = json.loads((text_package / "danlu-model.json").read_text())["name"]
    return Slow(text_package, name, bbc_texts(100, 10)[0])
