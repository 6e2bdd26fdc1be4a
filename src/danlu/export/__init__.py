"""Export: the `export` recipe section, ONNX, parity and the model package."""

from __future__ import annotations

from typing import Any

from danlu.export.config import ExportConfig

__all__ = ["ExportConfig", "export"]


def __getattr__(name: str) -> Any:
    # The stage verb imports torch: load it on first use so the config stays cheap to import.
    if name == "export":
        from danlu.export.stage import export

        return export
    raise AttributeError(f"module 'danlu.export' has no attribute {name!r}")
