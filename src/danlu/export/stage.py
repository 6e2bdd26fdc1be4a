"""The export stage: the package of the trained model, its runtimes chosen by measurement."""

from __future__ import annotations

import shutil

from danlu.data.stage import load_splits
from danlu.export.config import ExportConfig
from danlu.export.package import build_package, column_order, sha256, write_model_card
from danlu.runs import Run, StageResult, read_json

__all__ = ["export"]


def export(run: Run, cfg: ExportConfig) -> StageResult:
    """Write package/ (artifacts, danlu-model.json, README.md) from train/model/."""
    from danlu.models.load import load_model

    splits = load_splits(run)
    model = load_model(run.path("train", "model"))
    metrics = read_json(run.path("eval", "metrics.json"))
    recipe = run.recipe
    weights = sorted(model.folder.glob("*.safetensors"))
    provenance = {"recipe_sha256": recipe.section_hash(*recipe.to_dict()),
                  "model_sha256": sha256(weights[0]) if weights else None, "run": run.dir.name,
                  "versions": run.manifest["versions"]}
    staging = run.path(".package.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    meta = build_package(staging, model, splits.values["test"], splits.y["test"], cfg,
                         order=column_order(recipe.data.features), name=recipe.name, version=cfg.version,
                         metrics={"test": metrics["test"], "gate": metrics["gate"]},
                         provenance=provenance)
    write_model_card(staging, meta, splits.info)
    pkg = run.path("package")
    shutil.rmtree(pkg, ignore_errors=True)
    staging.replace(pkg)  # the package appears whole or not at all
    chosen = meta["runtimes"][meta["runtime"]]
    return StageResult(paths={"package": "package"},
                       metrics={"runtime": meta["runtime"], "dtype": chosen["dtype"],
                                "b32_ms": chosen["latency_ms"]["b32"],
                                "speedup_b32": chosen["latency_ms"].get("speedup_b32"),
                                "parity_max_abs_diff": chosen["parity"]["max_abs_diff"],
                                "parity_label_agreement": chosen["parity"]["label_agreement"],
                                "rejected": [k for k, e in meta["runtimes"].items()
                                             if not e["passed"]]})
