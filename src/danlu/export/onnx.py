"""ONNX export of the packaged module (dynamo exporter, dynamic batch axis, one file)."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["export_onnx"]


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress to stdout/stderr (also from C++): keep the CLI's output clean."""
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def export_onnx(module: nn.Module, features: int, path: Path, input_name: str,
                opset: int = 20) -> Path:
    """Write `module` (rows of `features` floats -> probabilities, label) as one ONNX file."""
    module = module.eval()
    # The dynamo exporter needs an example batch of 2 or more to keep the batch axis dynamic.
    example = torch.zeros(2, features)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with _quiet():
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=opset, input_names=[input_name],
                output_names=["probabilities", "label"],
                dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
                external_data=False)
            program.save(str(tmp), external_data=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
