"""Inference engines, by the name danlu-model.json gives in `runtime`; loaded lazily."""

from __future__ import annotations

import importlib

from danlu.errors import DanluError
from danlu.serve.config import ServeConfig
from danlu.serve.package import Package
from danlu.serve.runtimes.base import Runtime, RuntimeInputError

__all__ = ["RUNTIMES", "Runtime", "RuntimeInputError", "load_runtime"]

# name -> "module:Class", imported only when a package asks for it, so an engine's heavy
# dependency (torch for a future PyTorch runtime) is never imported by the others.
RUNTIMES: dict[str, str] = {
    "onnxruntime": "danlu.serve.runtimes.onnx:OnnxRuntime",
}


def load_runtime(package: Package, cfg: ServeConfig | None = None) -> Runtime:
    """Build the runtime `package` names; an unknown name lists the choices."""
    target = RUNTIMES.get(package.runtime)
    if target is None:
        raise DanluError(f"{package.dir}: runtime {package.runtime!r} cannot be served here; "
                         f"one of: {', '.join(RUNTIMES)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(package, cfg)
