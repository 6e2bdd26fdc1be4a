"""ONNX Runtime engine: one InferenceSession per package, checked against the declared contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from danlu.errors import DanluError
from danlu.serve.config import ServeConfig
from danlu.serve.package import Package, TensorSpec
from danlu.serve.runtimes.base import Runtime, RuntimeInputError, intra_op_threads

__all__ = ["OnnxRuntime"]

# ORT's type strings -> Open Inference Protocol datatypes (the ones a package may declare).
ORT_TYPES = {
    "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32", "tensor(uint64)": "UINT64", "tensor(int8)": "INT8",
    "tensor(int16)": "INT16", "tensor(int32)": "INT32", "tensor(int64)": "INT64",
    "tensor(float16)": "FP16", "tensor(float)": "FP32", "tensor(double)": "FP64",
    "tensor(bfloat16)": "BF16", "tensor(string)": "BYTES",
}


class OnnxRuntime(Runtime):
    """Serve `package`'s model.onnx (or model.int8.onnx) on the CPU, every graph optimization on."""

    def __init__(self, package: Package, cfg: ServeConfig | None = None, artifact: str = "onnx",
                 entry: dict[str, Any] | None = None):
        cfg = cfg or ServeConfig()
        path = package.artifact(artifact)
        # 0 = share the cores among the batches that run at once (inference_workers), so two
        # concurrent ORT calls do not each start a thread per core and fight over them.
        threads = intra_op_threads(cfg)
        level = _optimization_level(package)
        self.session = _session(path, threads, level)
        self.options = {"artifact": path.name, "intra_op_threads": threads,
                        "graph_optimization_level": str(level).rsplit(".", 1)[-1],
                        "allow_spinning": False}
        # The graph's inputs; clients' raw values are encoded in front of it (EncodingRuntime).
        self.inputs, self.outputs = package.model_inputs, package.outputs
        _check_contract(path, "input", self.inputs, self.session.get_inputs())
        _check_contract(path, "output", package.outputs, self.session.get_outputs())
        self._all_outputs = [s.name for s in package.outputs]

    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch; ORT releases the GIL, so callers run this in a worker thread."""
        names = outputs or self._all_outputs
        try:
            arrays = self.session.run(names, inputs)
        except InvalidArgument as e:
            # ORT's INVALID_ARGUMENT means the feed was wrong (bad index, mismatched dims).
            raise RuntimeInputError(f"the model refused this input: {_first_line(e)}") from e
        return dict(zip(names, arrays, strict=True))


# danlu-model.json "session": {"graph_optimization_level": ...} -> ORT's enum.
LEVELS = {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
          "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def _optimization_level(package: Package) -> ort.GraphOptimizationLevel:
    """The package's graph optimization level; "all" (the default) is what convolutions need."""
    session = package.meta.get("session") or {}
    level = session.get("graph_optimization_level", "all") if isinstance(session, dict) else None
    if level not in LEVELS:
        raise DanluError(f"{package.dir}: session.graph_optimization_level: got {level!r}, "
                         f"expected one of {', '.join(LEVELS)}")
    return LEVELS[level]


def _session(path: Path, threads: int,
             level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
             ) -> ort.InferenceSession:
    """A CPU InferenceSession, ORT_ENABLE_ALL unless the package says otherwise (ENV.md)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.intra_op_num_threads = threads
    # No busy-waiting between calls: idle ORT threads would spin on the cores that the event
    # loop needs to parse the next requests (measured: throughput drops on 2 cores).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises several unrelated types for a bad file
        raise DanluError(f"{path}: ONNX Runtime cannot load it ({_first_line(e)})") from e


def _check_contract(path: Path, role: str, declared: list[TensorSpec], actual: list) -> None:
    """Fail at load, not per request, when danlu-model.json and the ONNX graph disagree."""
    graph = {a.name: a for a in actual}
    for spec in declared:
        node = graph.get(spec.name)
        if node is None:
            raise DanluError(f"{path}: declared {role} {spec.name!r} is not in the ONNX graph "
                             f"(graph {role}s: {', '.join(graph)})")
        dt = ORT_TYPES.get(node.type, node.type)
        if dt != spec.datatype:
            raise DanluError(f"{path}: {role} {spec.name!r} is {dt} in the ONNX graph "
                             f"but {spec.datatype} in danlu-model.json")
        _check_dims(path, role, spec, node.shape)
    if role == "input" and set(graph) != {s.name for s in declared}:
        missing = sorted(set(graph) - {s.name for s in declared})
        raise DanluError(f"{path}: the ONNX graph needs inputs {missing} that "
                         "danlu-model.json does not declare")


def _check_dims(path: Path, role: str, spec: TensorSpec, shape: list | None) -> None:
    """Rank must agree; a dim the graph fixes must be declared with the same size."""
    if shape is None:  # ORT could not infer this output's shape: nothing to compare
        return
    ok = len(shape) == len(spec.shape) and all(
        not isinstance(g, int) or g == d for g, d in zip(shape, spec.shape, strict=True))
    if not ok:
        graph = [g if isinstance(g, int) else -1 for g in shape]
        raise DanluError(f"{path}: {role} {spec.name!r} has shape {graph} in the ONNX graph "
                         f"but {list(spec.shape)} in danlu-model.json (-1 = any size)")


def _first_line(e: Exception) -> str:
    """ORT messages run over several lines; the first says what went wrong."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
