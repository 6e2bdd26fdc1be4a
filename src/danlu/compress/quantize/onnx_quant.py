"""ONNX Runtime quantization: dynamic int8, static int8 QDQ with calibration, fp16 weights."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

import numpy as np

from danlu.compress.config import QuantizeConfig

__all__ = ["quantize_dynamic_int8", "quantize_onnx"]

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")


class _Rows:
    """CalibrationDataReader over raw rows (normalization is inside the graph), 32 rows a batch."""

    def __init__(self, input_name: str, x: np.ndarray, batch: int = 32):
        self._batches = iter([{input_name: np.ascontiguousarray(x[i:i + batch], dtype=np.float32)}
                              for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._batches, None)

    def rewind(self) -> None:  # some calibrators call it; our iterator is single-pass by design
        pass


def quantize_onnx(src: Path, dst: Path, mode: str, cfg: QuantizeConfig, input_name: str,
                  calibration: np.ndarray | None = None) -> Path:
    """Write the `mode` (dynamic|static|fp16) version of the fp32 model `src` to `dst`."""
    import onnx
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer logs hints at warning level
    if mode == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # Inputs/outputs stay fp32, so the package's contract does not change.
        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(model, str(dst))
        return dst
    with tempfile.TemporaryDirectory() as d:
        pre = Path(d) / "pre.onnx"
        # Shape inference + graph optimization (folds BatchNorm into Conv) before quantizing.
        with contextlib.redirect_stdout(None):
            quant_pre_process(str(src), str(pre))
        if mode == "dynamic":
            q.quantize_dynamic(str(pre), str(dst), per_channel=cfg.per_channel,
                               weight_type=q.QuantType.QInt8)
            return dst
        if mode != "static":
            raise ValueError(f"quantize mode {mode!r}: expected dynamic, static or fp16")
        if calibration is None or not len(calibration):
            raise ValueError("static quantization needs calibration rows")
        method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
                  "percentile": q.CalibrationMethod.Percentile}[cfg.calibration]
        # S8S8 QDQ: ORT's recommended default on x86 with VNNI. Only the weight-bearing ops are
        # quantized: a quantized Softmax would serve probabilities in steps of 1/255.
        q.quantize_static(str(pre), str(dst), _Rows(input_name, calibration),
                          quant_format=q.QuantFormat.QDQ, per_channel=cfg.per_channel,
                          op_types_to_quantize=list(WEIGHT_OPS),
                          activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          calibrate_method=method,
                          extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return dst


def quantize_dynamic_int8(src: Path, dst: Path) -> Path:
    """ORT dynamic int8 with per-channel weight scales: the small (~4x) file of a transformer
    (per-tensor and naive static int8 lose MiniLM's accuracy, ENV.md); the embedding table is
    quantized too. ORT's symbolic shape inference gives up on exported attention graphs
    ("Incomplete symbolic shape inference"): it is skipped, ONNX shape inference is kept."""
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer logs hints at warning level
    with tempfile.TemporaryDirectory() as d:
        pre = Path(d) / "pre.onnx"
        with contextlib.redirect_stdout(None):
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        q.quantize_dynamic(str(pre), str(dst), per_channel=True, weight_type=q.QuantType.QInt8)
    return dst
