"""One measurement for every variant, through its package as `danlu serve` runs it: the runtime
`danlu.serve.runtimes.load_runtime` builds from the package folder, fed client values of the test
and validation splits. Metrics by the head, an interval of the budget's metric, parameters, the served
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

__all__ = ["Measured", "deflated_size", "load_served", "measure", "named_outputs", "onnx_params",
           "serve_predict"]


@dataclass
class Measured:
    """What compress measured of one variant's package."""

    outputs: tuple[np.ndarray, ...]  # test split, the package's outputs as served
    metric: str  # the metric the budget gates (Context.metric)
    lower_better: bool  # whether a smaller `metric` is better (the head says)
    metrics: dict[str, Any]  # head.scores on the test split
    headline: dict[str, Any]  # head.headline of `metrics`: what rows and cards show
    metric_ci: list[float] | None  # the head's bootstrap interval of `metric`
    val_metric: float  # `metric` on the validation split (the search decides on it)
    params: int
    nonzero_params: int
    size_bytes: int  # the served artifact (file or folder)
    deflated_bytes: int
    latency: dict[str, Any]

    @property
    def value(self) -> float:
        """The test `metric`."""
        return float(self.metrics[self.metric])

    @property
    def probabilities(self) -> np.ndarray:
        """The head's first output (class probabilities; a regression's value)."""
        return self.outputs[0]

    @property
    def labels(self) -> np.ndarray:
        """The head's decoded output, its last (a label; a regression's value)."""
        return self.outputs[-1]

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]


def named_outputs(head: Any, outputs: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Outputs by the head's output names, as predictions.npz stores them (a label output is
    stored as `labels`)."""
    names = [s["name"] for s in head.outputs()]
    return {("labels" if n == "label" else n): np.asarray(o)
            for n, o in zip(names, outputs, strict=True)}


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
    from danlu.export.runtimes import latency_inputs, time_interleaved

    lat = ctx.cfg.latency
    y, y_val = ctx.y("test"), ctx.y("val")
    runners, out = {}, {}
    for name, b in variants.items():
        package, runtime = load_served(b.dir, lat.threads)
        batch = b.family.predict_batch
        outputs = tuple(np.asarray(o) for o in _predict(package, runtime, ctx.values("test"), batch))
        val_first = _predict(package, runtime, ctx.values("val"), batch)[0]
        artifact = _artifact(package)
        params, nonzero = _params(b, package)
        metric = ctx.metric
        out[name] = Measured(
            outputs=outputs, metric=metric, lower_better=ctx.head.lower_is_better(metric),
            metrics=(scores := ctx.head.scores(outputs[0], y)),
            headline=ctx.head.headline(scores),
            metric_ci=ctx.head.interval(outputs[0], y, metric),
            val_metric=float(ctx.head.scores(val_first, y_val)[metric]), params=params,
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
