"""The model package: the runtimes' artifacts, danlu-model.json (danlu.package's schema) and a
model card. `build_package` is the one path: the export stage and every compression variant."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from danlu.package import PackageMeta, write_meta
from danlu.runs import atomic_write

__all__ = ["build_package", "column_order", "model_card", "sha256"]


def feature_meta(f: Any) -> dict[str, Any]:
    return {**f.describe(), "input": f.client_input(), "graph_inputs": f.graph_inputs()}


def column_order(entries: dict[str, Any] | None) -> list[str]:
    """The raw columns in the order of the recipe's data.features (an entry's `columns`, else
    its name): the order of a package's raw-row array form."""
    out: list[str] = []
    for name, entry in (entries or {}).items():
        cols = getattr(entry, "columns", None)
        out.extend(cols if isinstance(cols, list) else [name])
    return out


def build_package(out: Path, model: Any, values: dict[str, np.ndarray], y: np.ndarray | None,
                  cfg: Any, runtimes: list[str] | None = None, order: list[str] | None = None,
                  **meta: Any) -> dict[str, Any]:
    """Write the package of `model` (a loaded model folder, danlu.models.load) into `out`: one
    artifact per runtime (default: every runtime its family can be served in), each gated on
    the test rows `values` and timed (danlu.export.runtimes); the fastest passing is the default.
    `order` is the raw columns' order (`column_order`). `meta` adds name, version, metrics,
    provenance, ... Returns danlu-model.json's content."""
    from danlu.export.runtimes import choose, measure_runtimes, torch_dtype, write_artifacts
    from danlu.features import column_inputs

    out.mkdir(parents=True, exist_ok=True)
    fam = model.family
    runtimes = list(runtimes if runtimes is not None else fam.runtimes)
    if not cfg.int8 and len(runtimes) > 1:
        runtimes = [r for r in runtimes if r != "onnxruntime-int8"]
    sizes, files = write_artifacts(model, out, runtimes, cfg.opset, hf=cfg.hf)
    for f in model.features:  # what the server's encoder needs (a tokenizer.json)
        for asset in f.assets():
            shutil.copyfile(asset, out / Path(asset).name)
    from danlu.export.runtimes import ARTIFACTS

    dtypes = {"torch": torch_dtype(cfg), "onnxruntime-int8": "int8"}
    doc: dict[str, Any] = {
        **meta, "task": meta.get("task", model.head.task),
        "features": [feature_meta(f) for f in model.features], "head": model.head.describe(),
        "inputs": [f.client_input() for f in model.features],
        "columns": column_inputs(model.features, order), "outputs": model.head.outputs(),
        "labels": model.head.labels, "runtime": runtimes[0],
        "runtimes": {rt: {"artifact": ARTIFACTS[rt][0], "dtype": dtypes.get(rt, "float32")}
                     for rt in runtimes},
        "artifacts": files,
        "preprocessing": {"in_graph": [f.name for f in model.features
                                       if f.client_input() in f.graph_inputs()],
                          "encoded_by_server": [f.name for f in model.features
                                                if f.client_input() not in f.graph_inputs()]},
    }
    write_meta(out, doc)  # provisional: the runtimes are loaded from it, as the server does
    cands, ref, ref_out = measure_runtimes(out, model, values, cfg, runtimes, sizes)
    chosen, why = choose(cands, cfg.runtime, fam.fallback)
    entries = {k: c.entry() for k, c in cands.items()}
    if not cands[chosen].passed and chosen == fam.fallback and cfg.runtime == "auto":
        # served as float32 PyTorch: the parity reference itself, exact by definition
        entries[chosen].update(
            dtype="float32", passed=True, reasons=[],
            fallback=f"{cands[chosen].dtype} failed ({'; '.join(cands[chosen].reasons)}); "
                     "served in float32, the reference itself",
            parity={"rows": len(ref_out[0]), "max_abs_diff": 0.0, "label_agreement": 1.0,
                    "passed": True, "reference": True})
        loaded = entries[chosen].get("loaded") or {}
        loaded.setdefault("options", {})["dtype"] = "float32"  # what the server builds from it
    if y is not None and len(y):  # each runtime's test score, as the head scores (accuracy, rmse)
        for k, c in cands.items():
            entries[k].update(model.head.test_score(c.outputs, y))
        ref.update(model.head.test_score(ref_out, y))
    doc.update(runtime=chosen, runtimes=entries, parity=entries[chosen]["parity"],
               runtime_choice={"why": why, "override": cfg.runtime, "reference": ref})
    provenance = doc.setdefault("provenance", {})
    main = out / files[ARTIFACTS[chosen][0]]
    provenance[f"{ARTIFACTS[chosen][0]}_sha256"] = sha256(main) if main.is_file() else None
    write_meta(out, doc)
    return PackageMeta.model_validate(doc).dump()


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
    """A short model card: what the model does, its inputs, data, metrics, runtimes and limits."""
    test = meta.get("metrics", {}).get("test", {})
    ci = test.get("ci", {})
    rows = "\n".join(f"| {k} | {_fmt(test[k])} | {_interval(ci.get(k))} |" for k in
                     ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                      "f1_weighted") if k in test)
    warn = "".join(f"\n> **Warning:** {w['message']}\n" for w in test.get("warnings", []))
    per = "\n".join(f"| {lab} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {_fmt(v['f1'])} "
                    f"| {v['support']} |" for lab, v in test.get("per_class", {}).items())
    inputs = "\n".join(
        f"| `{f['name']}` | {f['type']} | {f['input']['datatype']} {f['input']['shape']} | "
        f"{'in the graph' if f['input'] in f['graph_inputs'] else 'encoded by the server'} |"
        for f in meta["features"])
    rt = "\n".join(
        f"| {k}{' (default)' if k == meta['runtime'] else ''} | {e['dtype']} | "
        f"{_share(e['parity']['label_agreement'])} | {e['parity']['max_abs_diff']:.2g} | "
        f"{e['latency_ms']['b1']:.3f} | {e['latency_ms']['b32']:.3f} | {e['size_bytes'] / 1e6:.2f} | "
        f"{'passed' if e['passed'] else 'rejected: ' + '; '.join(e['reasons'])} |"
        for k, e in meta["runtimes"].items())
    ref = meta["runtime_choice"]["reference"]
    versions = meta.get("provenance", {}).get("versions", {})
    return f"""# {meta['name']} (version {meta['version']})

A {meta['task']} model made by danlu {versions.get('danlu', '')} from `{info['source']}`
({info['rows']} rows, {len(meta['labels'])} classes: {', '.join(meta['labels'][:12])}).

## Use
Send **raw** values, as in the source data; every fitted step (normalization, vocabularies,
tokenization) is inside the graph or in the server's encoder:

| input | feature type | client sends | fitted preprocessing |
|---|---|---|---|
{inputs}

Outputs: `probabilities` (one per class, in the order of `labels` in danlu-model.json) and
`label` (the index of the most likely class).

```bash
danlu serve .        # KServe v2 at http://127.0.0.1:8080/v2/models/{meta['name']}/infer
```
{_hf_use(meta)}
## Test metrics ({test.get('n', '?')} held-out rows, never used for training or model selection)
{warn}
| metric | value | 95% bootstrap interval |
|---|---|---|
{rows}

| class | precision | recall | F1 | support |
|---|---|---|---|---|
{per}

## Runtimes (measured at export: {ref['threads']} threads, on every test row)
Float32 PyTorch eager (the reference): {ref['latency_ms']['b1']:.3f} ms at batch 1,
{ref['latency_ms']['b32']:.3f} ms at batch 32.

| runtime | dtype | labels agree | max prob diff | b1 ms | b32 ms | MB | gates |
|---|---|---|---|---|---|---|---|
{rt}

Default: {meta['runtime_choice']['why']}.

## Limits
Trained on {info['rows']} rows of one source; inputs unlike them (other scales, other devices,
other populations, other topics) are outside what these metrics measure. The metrics above come
from one split of one seed; latencies depend on the CPU (rerun the export on the serving machine).
"""


def _hf_use(meta: dict[str, Any]) -> str:
    """How to load the package's Hugging Face folder, when it has one."""
    folder = meta.get("artifacts", {}).get("hf")
    if folder is None:
        return ""
    return f"""
`{folder}/` is the same model as a Hugging Face folder (labels as `id2label`); push it to a hub
as it is (`hf upload USER/{meta['name']} ./{folder}`):

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained("./{folder}")
model = AutoModelForSequenceClassification.from_pretrained("./{folder}")
logits = model(**tok(["some text"], truncation=True, padding=True, return_tensors="pt")).logits
```
"""


def write_model_card(pkg: Path, meta: dict[str, Any], info: dict[str, Any]) -> Path:
    return atomic_write(pkg / "README.md", model_card(meta, info))


def _share(v: float | None) -> str:
    """A label agreement as a percentage; "-" for a head without labels (a regression)."""
    return "-" if v is None else f"{v:.2%}"
