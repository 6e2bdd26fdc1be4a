"""A variant's package: built by the export stage's `build_package` from a model folder, or the
quantized graph with the baseline's features and head (written through danlu.package.write_meta,
the one writer of danlu-model.json); its measurements and model card; promotion."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from danlu.compress.context import Context
from danlu.package import MANIFEST, read_meta, write_meta
from danlu.runs import Run, atomic_write, write_json

if TYPE_CHECKING:
    from danlu.compress.measure import Measured
    from danlu.compress.variants import Variant

__all__ = ["exported_package", "package_baseline", "package_files", "package_model", "promote",
           "quantized_package", "write_variant"]

# What a variant shares with the baseline's package: the contract clients see.
SHARED = ("name", "task", "features", "head", "inputs", "columns", "outputs", "labels",
          "preprocessing", "allow_nonfinite", "session")
# danlu-model.json runtimes.<name>.dtype of a quantized graph, by quantization mode.
DTYPES = {"static": "int8", "dynamic": "int8", "fp16": "float16", "float32": "float32"}


def _meta(ctx: Context, name: str) -> dict[str, Any]:
    run = ctx.run
    return {"name": run.recipe.name, "version": f"{run.recipe.export.version}-{name}",
            "provenance": {"variant": name, "run": run.dir.name,
                           "versions": run.manifest.get("versions", {})}}


def package_model(ctx: Context, b: Variant) -> dict[str, Any]:
    """b.dir gets the package of b.model as the export stage builds one: its family's runtimes,
    each gated on the test rows and timed; the fastest passing is the default."""
    from danlu.export.package import build_package, column_order

    return build_package(b.dir, b.model, ctx.values("test"), ctx.y("test"), ctx.export,
                         order=column_order(ctx.run.recipe.data.features), **_meta(ctx, b.name))


def exported_package(ctx: Context, b: Variant) -> Path | None:
    """The package the export stage built from b.model in its own run (package/, or
    package.orig/ after a promotion), when it is what `package_model` would build now: the same
    weights (provenance.model_sha256), runtimes, runtime override and threads. None otherwise."""
    from danlu.export.package import sha256

    run_dir = Path(b.record["source"]["path"])
    found = [d for d in (run_dir / "package.orig", run_dir / "package") if (d / MANIFEST).is_file()]
    weights = sorted(b.model.folder.glob("*.safetensors"))
    if not found or not weights:
        return None
    meta = read_meta(found[0]).dump()
    runtimes = list(b.family.runtimes)
    if not ctx.export.int8 and len(runtimes) > 1:  # as build_package leaves it out
        runtimes.remove("onnxruntime-int8")
    choice = meta.get("runtime_choice", {})
    same = (meta.get("provenance", {}).get("model_sha256") == sha256(weights[0])
            and "compression" not in meta and list(meta["runtimes"]) == runtimes
            and choice.get("override") == ctx.export.runtime
            and choice.get("reference", {}).get("threads") == ctx.export.threads)
    return found[0] if same else None


def package_baseline(ctx: Context, b: Variant) -> dict[str, Any]:
    """b.dir gets the baseline's package: a copy of the export stage's when it is the same
    (`exported_package`: built by the same build_package, so not built twice), else built."""
    exported = exported_package(ctx, b)
    if exported is None:
        b.record["package"] = "built by build_package from the model folder"
        return package_model(ctx, b)
    shutil.copytree(exported, b.dir, dirs_exist_ok=True)
    b.record["package"] = (f"the export stage's {exported.name}/ of {exported.parent.name} (same "
                           "weights, runtimes and threads)")
    meta = read_meta(b.dir).dump()
    ours = _meta(ctx, b.name)
    meta.update(version=ours["version"], provenance={**meta.get("provenance", {}),
                                                     "variant": b.name})
    write_meta(b.dir, meta)
    return meta


def quantized_package(ctx: Context, folder: Path, graph: Path, mode: str,
                      name: str) -> dict[str, Any]:
    """`folder` gets a package serving the ONNX `graph` (quantized in `mode`) with the baseline
    package's features, head and feature files (a tokenizer)."""
    from danlu.serve.package import load_package

    base = read_meta(ctx.baseline).dump()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(graph, folder / "model.onnx")
    for f in load_package(ctx.baseline).features:
        for asset in f.assets():
            shutil.copyfile(asset, folder / Path(asset).name)
    doc = {k: base[k] for k in SHARED if k in base}
    doc.update(_meta(ctx, name), runtime="onnxruntime", artifacts={"onnx": "model.onnx"},
               runtimes={"onnxruntime": {"artifact": "onnx", "dtype": DTYPES[mode],
                                         "size_bytes": (folder / "model.onnx").stat().st_size}})
    write_meta(folder, doc)
    return read_meta(folder).dump()


def write_variant(ctx: Context, b: Variant, m: Measured, gates: dict[str, Any],
                  parity: dict[str, Any] | None = None) -> dict[str, Any]:
    """compression.json, predictions.npz, and the package's danlu-model.json and README.md
    with what compress measured. Returns the compression record."""
    from danlu.compress.measure import named_outputs

    record = {"variant": b.name, "from": b.parent or "baseline", "steps": b.steps, **b.record,
              "gates": gates, "params": m.params, "nonzero_params": m.nonzero_params,
              "size_bytes": m.size_bytes, "deflated_bytes": m.deflated_bytes,
              "latency": m.latency, "quantized": b.quantized, "runtime": b.runtime,
              "dtype": b.dtype, "predictions": "predictions.npz"}
    write_json(b.dir / "compression.json", record)
    buf = io.BytesIO()
    np.savez_compressed(buf, y=ctx.y("test"), **named_outputs(ctx.head, m.outputs))
    atomic_write(b.dir / "predictions.npz", buf.getvalue())
    meta = dict(b.meta)
    passed = all(g["passed"] for g in gates.values())
    meta.update(metrics={"test": m.metrics, "gate": {"passed": passed}}, compression=record)
    if parity is not None:
        meta["parity"] = parity
    if b.zipped:
        served = meta["artifacts"][meta["runtimes"][meta["runtime"]]["artifact"]]
        meta["artifacts"][f"{meta['runtimes'][meta['runtime']]['artifact']}_zip"] = f"{served}.zip"
    write_meta(b.dir, meta)
    from danlu.compress.card import variant_card

    atomic_write(b.dir / "README.md", variant_card(meta, m, ctx.splits.info))
    return record


def package_files(folder: Path) -> list[Path]:
    """The files and folders of the package in `folder`: danlu-model.json, README.md, its
    artifacts (and shipped zips) and its features' files; not compress's own records."""
    from danlu.serve.package import load_package

    meta = read_meta(folder)
    names = {MANIFEST, "README.md", *meta.artifacts.values()}
    names |= {Path(a).name for f in load_package(folder).features for a in f.assets()}
    return [folder / n for n in sorted(names) if (folder / n).exists()]


def promote(run: Run, folder: Path | None) -> Path:
    """Make `folder`'s package the run's package/ (the original kept in package.orig/);
    folder=None restores the original."""
    pkg, orig = run.path("package"), run.path("package.orig")
    if orig.is_dir():  # an earlier promotion: put the original back first
        shutil.rmtree(pkg, ignore_errors=True)
        orig.rename(pkg)
    if folder is None:
        return pkg
    staging = run.path(".package.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for f in package_files(folder):
        if f.is_dir():
            shutil.copytree(f, staging / f.name)
        else:
            shutil.copy2(f, staging / f.name)
    pkg.rename(orig)
    staging.rename(pkg)
    return pkg
