"""Serve model packages over HTTP: KServe v2 (Open Inference Protocol) and TF-Serving /v1.

Imports no torch: an ONNX package needs only onnxruntime to serve. The public names load on
first use, so `danlu.serve.config` (which the recipe imports) costs pydantic, not FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Client", "Package", "ServeConfig", "ServerError", "create_app", "load_package",
           "resolve_serve_config", "serve"]

_LAZY = {
    "Client": "danlu.serve.client",
    "ServerError": "danlu.serve.client",
    "Package": "danlu.serve.package",
    "load_package": "danlu.serve.package",
    "ServeConfig": "danlu.serve.config",
    "resolve_serve_config": "danlu.serve.config",
    "create_app": "danlu.serve.app",
    "serve": "danlu.serve.app",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'danlu.serve' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
