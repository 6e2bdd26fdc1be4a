"""The int8 ceiling of this CPU in ONNX Runtime: one layer in fp32 vs the same layer in int8.

Issue "Performance that holds", item 4: static int8 made the compute-bound CNN (64-128-256
channels on 32x32 images, benchmarks/compression.py) only 1.1-1.6x faster than fp32. The end-to-end
speed-up cannot exceed what the int8 kernels themselves give over the fp32 ones on this CPU, so this
measures exactly that, with nothing else in the graph (no Quantize/Dequantize, no ReLU, no pooling):
- Conv fp32 vs QLinearConv (uint8 activations, int8 weights: ORT's static-int8 kernel) at the
  CNN's three conv shapes, batch 32;
- MatMul fp32 vs MatMulInteger (uint8 x int8 -> int32) on a 1024 x 1024 x 1024 GEMM.
Each pair is timed interleaved in one process on ORT's CPU provider with 2 intra-op threads
(this machine's cores); medians of `--runs`, the sides alternating in blocks of 5. Writes
results/int8_ceiling.json and rows in RESULTS.md (benchmarks/_common.py: waits for a quiet
machine, records the load).

    python benchmarks/int8_ceiling.py            # ~1 min
    python benchmarks/int8_ceiling.py --quick    # a few runs (never writes RESULTS.md)
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import Bench, add_args

# (name, batch, in channels, out channels, height = width) of the compute-bound CNN's convs.
CONVS = [("conv1 1->64 @32x32", 32, 1, 64, 32), ("conv2 64->128 @16x16", 32, 64, 128, 16),
         ("conv3 128->256 @8x8", 32, 128, 256, 8)]
GEMM = 1024


def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _conv_models(b: int, c: int, k: int, hw: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    x_shape = [b, c, hw, hw]
    fp32 = helper.make_model(helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "fp32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")]), opset_imports=[helper.make_opsetid("", 17)])
    scale = np.float32(np.abs(w).max() / 127)
    inits = [numpy_helper.from_array(np.round(w / scale).astype(np.int8), "wq"),
             numpy_helper.from_array(np.array(scale, np.float32), "ws"),
             numpy_helper.from_array(np.array(0, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
             numpy_helper.from_array(np.array(128, np.uint8), "xz"),
             numpy_helper.from_array(np.array(0.05, np.float32), "ys"),
             numpy_helper.from_array(np.array(128, np.uint8), "yz")]
    int8 = helper.make_model(helper.make_graph(
        [helper.make_node("QLinearConv", ["x", "xs", "xz", "wq", "ws", "wz", "ys", "yz"], ["y"],
                          pads=[1, 1, 1, 1])], "int8",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits),
        opset_imports=[helper.make_opsetid("", 17)])
    x32 = rng.standard_normal(x_shape).astype(np.float32)
    x8 = rng.integers(0, 256, x_shape, dtype=np.uint8)
    return (fp32, {"x": x32}), (int8, {"x": x8}), 2 * b * k * c * 9 * hw * hw


def _gemm_models(n: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, n)).astype(np.float32)
    fp32 = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "fp32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")]), opset_imports=[helper.make_opsetid("", 17)])
    int8 = helper.make_model(helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "wq", "xz", "wz"], ["y"])], "int8",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "wq"),
         numpy_helper.from_array(np.array(128, np.uint8), "xz"),
         numpy_helper.from_array(np.array(0, np.int8), "wz")]),
        opset_imports=[helper.make_opsetid("", 17)])
    return ((fp32, {"x": rng.standard_normal((n, n)).astype(np.float32)}),
            (int8, {"x": rng.integers(0, 256, (n, n), dtype=np.uint8)}), 2 * n ** 3)


def _time_pair(pair, runs: int) -> dict[str, float]:
    """Median ms of each side, timed interleaved (danlu.export.runtimes.time_interleaved, as
    export times its runtimes); each side runs its own feed (fp32 or uint8)."""
    from danlu.export.runtimes import time_interleaved

    sessions = [(_session(m), feed) for m, feed in pair]
    runners = {side: (lambda _, s=s, feed=feed: s.run(None, feed))
               for side, (s, feed) in zip(("fp32_ms", "int8_ms"), sessions, strict=True)}
    ms = time_interleaved(runners, {32: None}, runs=runs, warmup=3)
    return {side: ms[side]["b32"] for side in runners}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="3 runs: a check that it runs")
    add_args(ap)
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    bench = Bench.start("int8_ceiling", args)
    results = {}
    for name, b, c, k, hw in CONVS:
        fp32, int8, flops = _conv_models(b, c, k, hw)
        results[name] = {**_time_pair((fp32, int8), runs), "flops": flops}
    fp32, int8, flops = _gemm_models(GEMM)
    results[f"gemm {GEMM}^3"] = {**_time_pair((fp32, int8), runs), "flops": flops}
    for r in results.values():
        r["speedup"] = r["fp32_ms"] / r["int8_ms"]
        r["fp32_gops"] = r["flops"] / r["fp32_ms"] / 1e6
        r["int8_gops"] = r["flops"] / r["int8_ms"] / 1e6
    bench.finish()
    import onnxruntime

    bench.save("int8_ceiling.json", {"what": "one layer, fp32 vs int8 kernels, ORT CPU, 2 threads",
                                     "onnxruntime": onnxruntime.__version__, "runs": runs,
                                     "layers": results})
    tail = bench.cell()
    rows = [f"| int8_ceiling {name}: ms per call, ORT {onnxruntime.__version__} int8 kernel "
            f"({'QLinearConv u8s8' if name.startswith('conv') else 'MatMulInteger u8s8'}) vs fp32 "
            f"(fp32 {r['fp32_gops']:.0f} GOP/s, int8 {r['int8_gops']:.0f} GOP/s; median of {runs}, "
            f"interleaved) | {r['int8_ms']:.2f} | {r['fp32_ms']:.2f} | {r['speedup']:.2f}x | {tail}"
            for name, r in results.items()]
    bench.rows("| int8_ceiling ", rows)
    for name, r in results.items():
        print(f"{name}: fp32 {r['fp32_ms']:.2f} ms, int8 {r['int8_ms']:.2f} ms, {r['speedup']:.2f}x")


if __name__ == "__main__":
    main()
