"""Measuring a model file: ONNX Runtime predictions, latency at batch 1 and 32, size on disk."""

from __future__ import annotations

import statistics
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from danlu.compress.config import LatencyConfig

__all__ = ["deflated_size", "latency", "onnx_params", "paired_latency", "predict", "session"]


def session(path: Path, threads: int, spin: bool = True):
    """An ORT session with fixed threads (intra-op = threads, one inter-op) and full optimization.

    spin=False stops idle worker threads from spinning: needed when two sessions alternate, or
    one session's spinning threads steal the cores from the other's runs."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ORT_ENABLE_ALL matters for convolutions (ENV.md: 0.86 vs 1.7 ms at batch 32).
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def predict(sess, x: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) for raw rows x, in batches."""
    name = sess.get_inputs()[0].name
    probs, labels = [], []
    for i in range(0, len(x), batch):
        p, lab = sess.run(["probabilities", "label"],
                          {name: np.ascontiguousarray(x[i:i + batch], dtype=np.float32)})
        probs.append(p)
        labels.append(lab)
    return np.concatenate(probs).astype(np.float32), np.concatenate(labels).astype(np.int64)


def _batch(x: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(np.resize(x, (n, x.shape[1])), dtype=np.float32)


def _time(sess, feed: dict, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        sess.run(None, feed)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def latency(sess, x: np.ndarray, cfg: LatencyConfig) -> dict[str, Any]:
    """Median ms at batch 1 and 32 over cfg.runs runs each, and rows/s at batch 32."""
    name = sess.get_inputs()[0].name
    b1 = statistics.median(_time(sess, {name: _batch(x, 1)}, cfg.runs, cfg.warmup))
    b32 = statistics.median(_time(sess, {name: _batch(x, 32)}, cfg.runs, cfg.warmup))
    return {"b1_ms": b1, "b32_ms": b32, "throughput_rows_s": 32 / b32 * 1e3,
            "runs": cfg.runs, "threads": cfg.threads}


def paired_latency(parent: Path, child: Path, x: np.ndarray, cfg: LatencyConfig, batch: int = 32,
                   block: int = 10) -> tuple[float, float]:
    """Median ms of the parent and child model files at `batch`, timed in alternating blocks of
    `block` runs so a load change on the shared machine hits both alike. Both sessions run with
    thread spinning off: otherwise the idle session's spinning threads slow the other one."""
    sessions = [session(p, cfg.threads, spin=False) for p in (parent, child)]
    feeds = [{s.get_inputs()[0].name: _batch(x, batch)} for s in sessions]
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(1, cfg.runs // block)):
        for s, f, t in zip(sessions, feeds, times, strict=True):
            t.extend(_time(s, f, block, warmup=2))
    return statistics.median(times[0]), statistics.median(times[1])


def deflated_size(path: Path, out: Path | None = None) -> int:
    """Bytes of `path` in a zip (deflate, level 9): zeros compress, so sparsity shows on disk.

    With `out`, the zip is written there (the pruned package ships it); else only measured."""
    target = out or path.with_name(f".{path.name}.size.zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, arcname=path.name)
    size = target.stat().st_size
    if out is None:
        target.unlink()
    return size


def onnx_params(path: Path) -> tuple[int, int]:
    """(weights, non-zero weights) of an ONNX graph: its initializers of 2+ elements (weights and
    biases; quantization scales and zero points are scalars or one per channel, counted too)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    total = nonzero = 0
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.size > 1:
            total += int(a.size)
            nonzero += int(np.count_nonzero(a))
    return total, nonzero
