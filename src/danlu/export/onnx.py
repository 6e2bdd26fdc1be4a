"""ONNX export of the packaged module (dynamo exporter, dynamic axes, one file)."""

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


def export_onnx(module: nn.Module, path: Path, opset: int = 20) -> Path:
    """Write a `Packaged` module as one ONNX file: its features' graph inputs (dynamic batch axis
    shared by all, other axes as the features say) -> the head's outputs."""
    module = module.eval()
    batch = torch.export.Dim("batch", min=1)
    examples = [e for f in module.features for e in f.examples(batch)]
    args = tuple(t for t, _ in examples)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with _quiet():
            program = torch.onnx.export(
                module, args, dynamo=True, opset_version=opset, input_names=module.input_names,
                output_names=module.output_names,
                # forward(*inputs): one entry for the varargs, a spec per input inside it
                dynamic_shapes=(tuple(dims for _, dims in examples),), external_data=False)
            program.save(str(tmp), external_data=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
