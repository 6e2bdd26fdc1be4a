"""Post-training quantization of ONNX models with ONNX Runtime: dynamic/static int8, fp16."""

from danlu.compress.quantize.onnx_quant import quantize_onnx

__all__ = ["quantize_onnx"]
