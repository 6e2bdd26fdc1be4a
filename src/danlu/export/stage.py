"""The export stage: ONNX with normalization inside, parity on the test split, the package."""

from __future__ import annotations

import shutil

from danlu.data.stage import load_splits
from danlu.export.config import ExportConfig
from danlu.export.onnx import export_onnx
from danlu.export.package import package_meta, write_model_card, write_package_meta
from danlu.export.parity import check_parity
from danlu.runs import Run, StageResult, read_json
from danlu.train.checkpoint import load_packaged

__all__ = ["export"]


def export(run: Run, cfg: ExportConfig) -> StageResult:
    """Write package/ (model.onnx, danlu-model.json, README.md) from the trained run."""
    if getattr(run.recipe.model, "arch", None) == "transformer":  # runtimes chosen by measurement
        from danlu.export.text import export_text

        return export_text(run, cfg)
    splits = load_splits(run)
    info = splits.info
    metrics = read_json(run.path("eval", "metrics.json"))
    module = load_packaged(run)
    input_name = "pixels" if info["image_shape"] else "features"
    staging = run.path(".package.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    onnx_path = export_onnx(module, info["features"], staging / "model.onnx", input_name, cfg.opset)
    parity = check_parity(module, onnx_path, splits.x["test"], input_name, cfg.parity_atol)
    meta = package_meta(run, onnx_path, cfg.version,
                        {"test": metrics["test"], "gate": metrics["gate"]}, parity)
    write_package_meta(staging, meta)
    write_model_card(staging, meta, info)
    pkg = run.path("package")
    shutil.rmtree(pkg, ignore_errors=True)
    staging.replace(pkg)  # the package appears whole or not at all
    return StageResult(paths={"package": "package"},
                       metrics={"parity_max_abs_diff": parity["max_abs_diff"],
                                "parity_label_agreement": parity["label_agreement"],
                                "onnx_bytes": (pkg / "model.onnx").stat().st_size})
