"""The model package: model.onnx + danlu-model.json + a model card (README.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from danlu.runs import Run, atomic_write, read_json, write_json

__all__ = ["FORMAT", "model_card", "package_meta", "write_package_meta"]

FORMAT = "danlu-model/1"


def package_meta(run: Run, onnx_path: Path, version: str, metrics: dict[str, Any],
                 parity: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """danlu-model.json's content for an ONNX classifier made from `run`'s data and recipe
    (the run's package and every compression variant share it); `extra` adds keys."""
    recipe, info = run.recipe, read_json(run.path("data", "info.json"))
    n = len(info["labels"])
    provenance = {"recipe_sha256": recipe.section_hash(*recipe.to_dict()),
                  "onnx_sha256": sha256(onnx_path), "run": run.dir.name,
                  "versions": run.manifest["versions"], **extra.pop("provenance", {})}
    return {
        "name": recipe.name, "version": version, "task": "classification",
        "runtime": "onnxruntime", "artifacts": {"onnx": onnx_path.name},
        "inputs": [{"name": "pixels" if info["image_shape"] else "features", "datatype": "FP32",
                    "shape": [-1, info["features"]]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, n]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}],
        # Column names in input order: `danlu evaluate PACKAGE --data csv:...` matches by name.
        "labels": info["labels"], "feature_names": info.get("feature_names"),
        "image_shape": info["image_shape"],
        "preprocessing": {"normalize": read_json(run.path("data", "normalizer.json")),
                          "in_graph": True},
        "metrics": metrics, "parity": parity, "provenance": provenance, **extra,
    }


def write_package_meta(pkg: Path, meta: dict[str, Any]) -> Path:
    """danlu-model.json: the contract the server reads (inputs, outputs, labels, runtime)."""
    return write_json(pkg / "danlu-model.json", {"format": FORMAT, **meta})


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "-"


def model_card(meta: dict[str, Any], info: dict[str, Any]) -> str:
    """A short model card: what the model does, its data, its metrics and its limits."""
    test = meta["metrics"]["test"]
    inp = meta["inputs"][0]
    ci = test.get("ci", {})
    rows = "\n".join(f"| {k} | {_fmt(test[k])} | {_interval(ci.get(k))} |" for k in
                     ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                      "f1_weighted") if k in test)
    warn = "".join(f"\n> **Warning:** {w['message']}\n" for w in test.get("warnings", []))
    per = "\n".join(f"| {lab} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {_fmt(v['f1'])} "
                    f"| {v['support']} |" for lab, v in test["per_class"].items())
    p = meta["parity"]
    return f"""# {meta['name']} (version {meta['version']})

A {meta['task']} model made by danlu {meta['provenance']['versions'].get('danlu', '')} from
`{info['source']}` ({info['rows']} rows, {info['features']} features, {len(meta['labels'])} classes).

## Use
Input `{inp['name']}`: {inp['datatype']} of shape {inp['shape']} — **raw** values, as in the
source data; normalization ({meta['preprocessing']['normalize']['kind']}) is inside the graph.
Outputs: `probabilities` (one per class, in the order of `labels` in danlu-model.json) and
`label` (the index of the most likely class).

```bash
danlu serve .        # KServe v2 at http://127.0.0.1:8080/v2/models/{meta['name']}/infer
```

## Test metrics ({test['n']} held-out rows, never used for training or model selection)
{warn}
| metric | value | 95% bootstrap interval |
|---|---|---|
{rows}

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per}

## Export parity
ONNX Runtime vs PyTorch on the {p['rows']} test rows: max |probability diff| {p['max_abs_diff']:.2g}
(tolerance {p['atol']:g}), labels agree {p['label_agreement']:.2%}.

## Limits
Trained on {info['rows']} rows of one source; inputs unlike them (other scales, other devices,
other populations) are outside what these metrics measure. The metrics above come from one
split of one seed.
"""


def write_model_card(pkg: Path, meta: dict[str, Any], info: dict[str, Any]) -> Path:
    return atomic_write(pkg / "README.md", model_card(meta, info))
