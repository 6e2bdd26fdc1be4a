"""Recipe section `export` (pydantic only, no torch)."""

from __future__ import annotations

from pydantic import Field

from danlu.data.config import Section

__all__ = ["ExportConfig"]


class ExportConfig(Section):
    # ONNX opset for the dynamo exporter; 20 is its default in torch 2.13.
    opset: int = Field(20, ge=17)
    # Max |probability difference| allowed between ONNX Runtime and PyTorch on the test split.
    parity_atol: float = Field(1e-4, gt=0)
    # Package version written into danlu-model.json and served as the v2 model version.
    version: str = "1"
