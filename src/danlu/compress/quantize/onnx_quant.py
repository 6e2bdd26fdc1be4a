"""ONNX Runtime quantization: dynamic int8, static int8 QDQ with calibration, fp16 weights."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from danlu.compress.config import QuantizeConfig

__all__ = ["preprocessed", "quantize_dynamic", "quantize_dynamic_int8", "quantize_onnx",
           "quiet_root_logger"]

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")
# Static int8 also quantizes the ops between them that only move or clamp values, so that a
# Conv -> Relu -> MaxPool -> Conv chain stays int8 end to end (ORT fuses the Relu into the
# QLinearConv and pools in int8). With the weight ops alone, the int8 Conv's output was
# dequantized for an fp32 MaxPool and quantized again: the compute-bound CNN at b32 ran 1.2x fp32
# instead of 2.1x (benchmarks/RESULTS.md, int8 notes). Not Softmax/Log (served probabilities in
# steps of 1/255), not the encodings' arithmetic (Sub, Div, Mul, Add, Concat).
PASS_THROUGH_OPS = ("Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten",
                    "Reshape", "Transpose", "Squeeze", "Unsqueeze")
_CWD = threading.Lock()  # the working folder is the process's: one borrower at a time


@contextlib.contextmanager
def quiet_root_logger(level: int = logging.ERROR) -> Iterator[None]:
    """The root logger at `level` inside the block, its previous level restored after (ORT's
    quantizer logs hints such as "Please consider to run pre-processing" at warning level there)."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)


@contextlib.contextmanager
def preprocessed(src: Path, **options: Any) -> Iterator[Path]:
    """ORT's quant_pre_process of `src` (shape inference, graph optimization; `options` are its
    keyword arguments) as a file in a temp folder, removed with everything in it after the block;
    the root logger is quiet meanwhile (`quiet_root_logger`).

    ORT's pre-processing runs with that temp folder as working folder: when symbolic shape inference
    is incomplete, SymbolicShapeInference.infer_shapes (onnxruntime/tools/symbolic_shape_infer.py)
    saves its partial model to the fixed relative path "sym_shape_infer_temp.onnx" (tensors over
    1 KB to "<uuid1>.data" beside it) before it raises, and neither it nor quant_pre_process takes a
    folder for that. Paths are made absolute first, the lock keeps two threads from swapping the
    folder under each other, and contextlib.chdir restores it even when ORT raises."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = Path(src).resolve()
    with quiet_root_logger(), tempfile.TemporaryDirectory(prefix="danlu-quant-") as d:
        pre = Path(d) / "pre.onnx"
        with _CWD, contextlib.chdir(d), contextlib.redirect_stdout(None):
            quant_pre_process(str(src), str(pre), **options)
        yield pre


def quantize_dynamic(src: Path, dst: Path, per_channel: bool, **options: Any) -> Path:
    """ORT dynamic int8 (int8 weights; activations quantized at run time) of `src` to `dst`, after
    `preprocessed(src, **options)`."""
    from onnxruntime import quantization as q

    with preprocessed(src, **options) as pre:
        q.quantize_dynamic(str(pre), str(dst), per_channel=per_channel, weight_type=q.QuantType.QInt8)
    return dst


class _Feeds:
    """CalibrationDataReader over batches of graph inputs ({input name: array}): the features'
    encoded client values, so every fitted step inside the graph runs as in serving."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._batches = iter(feeds)

    def get_next(self):
        return next(self._batches, None)

    def rewind(self) -> None:  # some calibrators call it; our iterator is single-pass by design
        pass


def quantize_onnx(src: Path, dst: Path, mode: str, cfg: QuantizeConfig,
                  calibration: list[dict[str, np.ndarray]] | None = None,
                  **preprocess: Any) -> Path:
    """Write the `mode` (dynamic|static|fp16) version of the fp32 model `src` to `dst`;
    `calibration`: batches of graph inputs (static only); `preprocess`: options of ORT's
    quant_pre_process (a model family's `quantize_preprocess`)."""
    import onnx
    from onnxruntime import quantization as q

    if mode == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # Inputs/outputs stay fp32, so the package's contract does not change.
        with quiet_root_logger():
            model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(model, str(dst))
        return dst
    # Both int8 modes quantize the pre-processed graph: shape inference + graph optimization
    # (folds BatchNorm into Conv).
    if mode == "dynamic":
        return quantize_dynamic(src, dst, per_channel=cfg.per_channel, **preprocess)
    if mode != "static":
        raise ValueError(f"quantize mode {mode!r}: expected dynamic, static or fp16")
    if not calibration:
        raise ValueError("static quantization needs calibration batches")
    method = {"minmax": q.CalibrationMethod.MinMax, "entropy": q.CalibrationMethod.Entropy,
              "percentile": q.CalibrationMethod.Percentile}[cfg.calibration]
    with preprocessed(src, **preprocess) as pre:
        # S8S8 QDQ: ORT's recommended default on x86 with VNNI.
        q.quantize_static(str(pre), str(dst), _Feeds(calibration),
                          quant_format=q.QuantFormat.QDQ, per_channel=cfg.per_channel,
                          op_types_to_quantize=[*WEIGHT_OPS, *PASS_THROUGH_OPS],
                          activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          calibrate_method=method,
                          extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return dst


def quantize_dynamic_int8(src: Path, dst: Path) -> Path:
    """ORT dynamic int8 with per-channel weight scales: the small (~4x) file of a transformer
    (per-tensor and naive static int8 lose MiniLM's accuracy, ENV.md); the embedding table is
    quantized too. ORT's symbolic shape inference gives up on exported attention graphs
    ("Incomplete symbolic shape inference"): it is skipped, ONNX shape inference is kept."""
    return quantize_dynamic(src, dst, per_channel=True, skip_symbolic_shape=True)
