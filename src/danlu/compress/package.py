"""A variant's model package: model.onnx + danlu-model.json + README.md, as the export stage makes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from danlu.export.package import package_meta, write_package_meta
from danlu.runs import Run, atomic_write, read_json

__all__ = ["PACKAGE_FILES", "promote", "write_variant_package"]

PACKAGE_FILES = ("model.onnx", "model.onnx.zip", "danlu-model.json", "README.md",
                 # text packages (export/text.py): int8 graph, tokenizer, torch/ HF folder
                 "model.int8.onnx", "tokenizer.json", "torch")


def write_variant_package(run: Run, folder: Path, name: str, metrics: dict[str, Any],
                          parity: dict[str, Any], compression: dict[str, Any],
                          zipped: bool) -> dict[str, Any]:
    """danlu-model.json and a model card for the variant in `folder` (model.onnx already there)."""
    info = read_json(run.path("data", "info.json"))
    meta = package_meta(run, folder / "model.onnx", f"{run.recipe.export.version}-{name}", metrics,
                        parity, compression=compression, provenance={"variant": name})
    if zipped:
        meta["artifacts"]["onnx_zip"] = "model.onnx.zip"
    write_package_meta(folder, meta)
    atomic_write(folder / "README.md", _card(meta, info))
    return meta


def _card(meta: dict[str, Any], info: dict[str, Any]) -> str:
    c, test = meta["compression"], meta["metrics"]["test"]
    lat = c["latency"]
    gates = "\n".join(f"- {k}: {'passed' if g['passed'] else 'FAILED — ' + g.get('reason', '')}"
                      for k, g in c["gates"].items())
    return f"""# {meta['name']} — compressed variant `{c['variant']}` (version {meta['version']})

Made by `danlu compress` from `{c['from']}` of run {meta['provenance']['run']}
(`{info['source']}`, {len(meta['labels'])} classes). Steps: {', '.join(c['steps']) or 'none'}.

Input `{meta['inputs'][0]['name']}`: raw FP32 rows of {info['features']} values (normalization in
the graph). Outputs `probabilities` and `label`, as in the uncompressed package.

| measure | value |
|---|---|
| test accuracy ({test['n']} rows) | {test['accuracy']:.4f} |
| parameters / non-zero | {c['params']:,} / {c['nonzero_params']:,} |
| model.onnx bytes / deflated (zip) bytes | {c['size_bytes']:,} / {c['deflated_bytes']:,} |
| ORT latency b1 / b32 (median, {lat['threads']} threads) | {lat['b1_ms']:.3f} / {lat['b32_ms']:.3f} ms |

Gates:
{gates}

The deflated size is what the zip of model.onnx weighs: zeros left by unstructured pruning
compress, while the ONNX file itself stores dense tensors (ONNX Runtime runs dense kernels).
"""


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
    for f in PACKAGE_FILES:
        if (folder / f).is_file():
            shutil.copy2(folder / f, staging / f)
        elif (folder / f).is_dir():
            shutil.copytree(folder / f, staging / f)
    pkg.rename(orig)
    staging.rename(pkg)
    return pkg
