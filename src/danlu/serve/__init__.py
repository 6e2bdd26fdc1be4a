"""Serve model packages over HTTP: KServe v2 (Open Inference Protocol) and TF-Serving /v1.

Imports no torch: an ONNX package needs only onnxruntime to serve.
"""

from __future__ import annotations

from danlu.serve.app import create_app, serve
from danlu.serve.client import Client, ServerError
from danlu.serve.config import ServeConfig
from danlu.serve.package import Package, load_package

__all__ = ["Client", "Package", "ServeConfig", "ServerError", "create_app", "load_package",
           "serve"]
