"""Post-training quantization of ONNX models with ONNX Runtime: dynamic/static int8, fp16."""

from danlu.compress.quantize.onnx_quant import (
    preprocessed,
    quantize_dynamic,
    quantize_onnx,
    quiet_root_logger,
)

__all__ = ["preprocessed", "quantize_dynamic", "quantize_onnx", "quiet_root_logger"]
