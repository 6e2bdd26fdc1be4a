"""One measurement for every variant, through its package as `danlu serve` runs it: the runtime
`danlu.serve.runtimes.load_runtime` builds from the package folder, fed client values of the test
and validation splits. Metrics by the head, an accuracy interval, parameters, the served
artifact's bytes (and deflated), and latency at batch 1 and 32 with every variant timed in one
interleaved loop (danlu.export.runtimes.time_interleaved), so a load change hits all alike."""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from danlu.compress.context import Context
    from danlu.compress.variants import Variant

__all__ = ["Measured", "deflated_size", "load_served", "measure", "onnx_params", "serve_predict"]


@dataclass
class Measured:
    """What compress measured of one variant's package."""

    probabilities: np.ndarray  # test split, the head's first output
    labels: np.ndarray  # test split, the head's decoded label
    metrics: dict[str, Any]  # head.scores on the test split
    accuracy_ci: list[float]
    val_accuracy: float
    params: int
    nonzero_params: int
    size_bytes: int  # the served artifact (file or folder)
    deflated_bytes: int
    latency: dict[str, Any]

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]


def load_served(folder: Path, threads: int) -> tuple[Any, Any]:
    """(Package, Runtime) of the package in `folder`, loaded as `danlu serve` loads it."""
    from danlu.serve.config import ServeConfig
    from danlu.serve.package import load_package
    from danlu.serve.runtimes import load_runtime

    package = load_package(folder)
    return package, load_runtime(package, ServeConfig(intra_op_threads=threads, inference_workers=1))


def _predict(package: Any, runtime: Any, values: dict[str, np.ndarray],
             batch: int) -> tuple[np.ndarray, ...]:
    names = [s.name for s in package.outputs]
    got = runtime.run_rows(values, names, batch)
    return tuple(got[n] for n in names)


def serve_predict(ctx: Context, folder: Path, split: str) -> tuple[np.ndarray, ...]:
    """The outputs of the package in `folder` on a split, as served."""
    package, runtime = load_served(folder, ctx.cfg.latency.threads)
    return _predict(package, runtime, ctx.values(split), ctx.family.predict_batch)


def _artifact(package: Any) -> Path:
    """The served artifact of a package: a file (ONNX) or a folder (a torch model folder)."""
    entry = package.runtimes.get(package.runtime, {})
    return package.dir / package.artifacts[entry.get("artifact", "onnx")]


def _bytes(path: Path) -> int:
    return (sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir()
            else path.stat().st_size)


def deflated_size(path: Path, out: Path | None = None) -> int:
    """Bytes of `path` (a file, or a folder's files) in a zip (deflate, level 9): zeros
    compress, so sparsity shows on disk. With `out` the zip is written there (a pruned package
    ships it); else only measured."""
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    with tempfile.TemporaryDirectory(prefix="danlu-zip-") as d:
        target = out or Path(d) / "size.zip"
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for f in files:
                z.write(f, arcname=f.relative_to(path.parent))
        return target.stat().st_size


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


def _params(b: Variant, package: Any) -> tuple[int, int]:
    """From the torch network behind the package, else (a package baseline's graphs) its ONNX
    graph's initializers."""
    if b.model is None:
        return onnx_params(package.dir / package.artifacts["onnx"])
    ps = list(b.model.net.parameters())
    return sum(p.numel() for p in ps), sum(int((p != 0).sum()) for p in ps)


def measure(ctx: Context, variants: dict[str, Variant]) -> dict[str, Measured]:
    """Every variant's package, loaded as served: test/val predictions, metrics, sizes; then
    all of them timed interleaved at batch 1 and 32 on real test rows."""
    from danlu.evaluate.stats import bootstrap_ci
    from danlu.export.runtimes import latency_inputs, time_interleaved

    lat = ctx.cfg.latency
    y, y_val = ctx.y("test"), ctx.y("val")
    runners, out = {}, {}
    for name, b in variants.items():
        package, runtime = load_served(b.dir, lat.threads)
        batch = b.family.predict_batch
        probs, labels = _predict(package, runtime, ctx.values("test"), batch)[:2]
        val_labels = _predict(package, runtime, ctx.values("val"), batch)[-1]
        artifact = _artifact(package)
        params, nonzero = _params(b, package)
        out[name] = Measured(
            probabilities=np.asarray(probs, np.float32), labels=np.asarray(labels, np.int64),
            metrics=ctx.head.scores(probs, y),
            accuracy_ci=bootstrap_ci(y, labels, n_classes=ctx.head.size)["accuracy"],
            val_accuracy=float((val_labels == y_val).mean()), params=params,
            nonzero_params=nonzero, size_bytes=_bytes(artifact),
            deflated_bytes=deflated_size(artifact, b.dir / f"{artifact.name}.zip" if b.zipped
                                         else None),
            latency={"runtime": b.runtime, "dtype": b.dtype})
        runners[name] = runtime.run
    timed = time_interleaved(runners, latency_inputs(ctx.features, ctx.values("test")),
                             runs=lat.runs, warmup=lat.warmup)
    for name, m in out.items():
        t = timed[name]
        m.latency.update(b1_ms=t["b1"], b32_ms=t["b32"], throughput_rows_s=32 / t["b32"] * 1e3,
                         runs=lat.runs, threads=lat.threads)
    return out
