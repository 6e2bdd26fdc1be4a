"""ORT quantization leaves no trace outside its temp folder: no files in the working folder,
the root logger's level as it was."""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from danlu.compress.config import QuantizeConfig
from danlu.compress.quantize import preprocessed, quantize_onnx, quiet_root_logger


def _model(path, op: str = "Relu", domain: str = ""):
    """x [batch, 64] @ w [64, 64] -> `op`: 16 KB of weights, over ORT's 1 KB external-data threshold."""
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node(op, ["h"], ["y"], domain=domain)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """An empty working folder, and an empty folder for temp files: both must stay empty."""
    (tmp_path / "cwd").mkdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "cwd"


def test_incomplete_symbolic_shape_inference_writes_nothing_in_the_working_folder(cwd, tmp_path):
    # An op ORT cannot infer: SymbolicShapeInference.infer_shapes saves sym_shape_infer_temp.onnx
    # and a <uuid>.data file to the working folder before it raises.
    src = _model(tmp_path / "mystery.onnx", "Mystery", domain="com.example")
    with pytest.raises(Exception, match="Incomplete symbolic shape inference"), preprocessed(src):
        pass
    assert os.getcwd() == str(cwd)
    assert list(cwd.iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []


def test_preprocessed_file_lives_until_the_block_ends(cwd, tmp_path):
    src = _model(tmp_path / "relu.onnx")
    with preprocessed(os.path.relpath(src)) as pre:  # a relative path still names the same file
        assert onnx.load(str(pre)).graph.node[0].op_type == "MatMul"
        assert os.getcwd() == str(cwd)
    assert not pre.exists() and list((tmp_path / "tmp").iterdir()) == []
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("mode", ["dynamic", "fp16"])
def test_quantize_restores_the_root_logger_level(mode, cwd, tmp_path):
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.INFO)
    try:
        dst = quantize_onnx(_model(tmp_path / "relu.onnx"), tmp_path / f"{mode}.onnx", mode,
                            QuantizeConfig(mode=mode))
        assert root.level == logging.INFO
    finally:
        root.setLevel(old)
    assert dst.is_file() and list(cwd.iterdir()) == []


def test_quiet_root_logger_restores_the_level_when_the_block_raises():
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    try:
        with pytest.raises(RuntimeError), quiet_root_logger():
            assert root.level == logging.ERROR
            raise RuntimeError("ORT failed")
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(old)
