"""The compress stage: baseline + each variant built, measured, gated; Pareto front; promotion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from danlu.compress.baseline import load_baseline
from danlu.compress.config import CompressConfig, VariantConfig
from danlu.compress.gates import accuracy_gate, speed_gate
from danlu.compress.measure import deflated_size, latency, onnx_params, paired_latency, predict, session
from danlu.compress.package import promote, write_variant_package
from danlu.compress.pareto import choose, pareto_front
from danlu.compress.variants import Built, Context, build_variant
from danlu.data.stage import load_splits
from danlu.evaluate.metrics import classification_metrics
from danlu.evaluate.stats import bootstrap_ci
from danlu.models import InputSpec
from danlu.runs import Run, StageResult, read_json, write_json

__all__ = ["compress", "make_context", "measure_variant"]


def make_context(run: Run, cfg: CompressConfig) -> Context:
    splits = load_splits(run)
    norm = read_json(run.path("data", "normalizer.json"))
    info = splits.info

    def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(splits.normalizer.transform(splits.x[split])),
                torch.from_numpy(splits.y[split]))

    shape = info["image_shape"]
    return Context(splits=splits, spec=InputSpec(int(info["features"]), tuple(shape) if shape else None),
                   train=tensors("train"), val=tensors("val"), shift=torch.tensor(norm["shift"]),
                   scale=torch.tensor(norm["scale"]), seed=run.recipe.seed,
                   input_name="pixels" if shape else "features", opset=run.recipe.export.opset,
                   parity_atol=run.recipe.export.parity_atol, threads=cfg.latency.threads)


def _params(b: Built) -> tuple[int, int]:
    if b.net is None:  # a packaged baseline (ONNX only) and its quantized children
        return onnx_params(b.onnx)
    ps = [p for p in b.net.parameters()]
    return sum(p.numel() for p in ps), sum(int((p != 0).sum()) for p in ps)


def measure_variant(ctx: Context, b: Built, cfg: CompressConfig) -> dict[str, Any]:
    """Test/val predictions in ORT, metrics, sizes, latency; writes predictions.npz."""
    sess = session(b.onnx, cfg.latency.threads)
    x, y = ctx.splits.x["test"], ctx.splits.y["test"]
    probs, labels = predict(sess, x)
    np.savez_compressed(b.dir / "predictions.npz", y=y, labels=labels, probabilities=probs)
    _, val_labels = predict(sess, ctx.splits.x["val"])
    metrics = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y),
                                      ctx.splits.info["labels"])
    params, nonzero = _params(b)
    zip_path = b.dir / "model.onnx.zip" if b.zipped else None
    ci = bootstrap_ci(y, labels, n_classes=ctx.num_classes)["accuracy"]
    return {"name": b.name, "metrics": metrics, "accuracy": metrics["accuracy"], "accuracy_ci": ci,
            "val_accuracy": float((val_labels == ctx.splits.y["val"]).mean()),
            "labels": labels, "params": params, "nonzero_params": nonzero,
            "size_bytes": b.onnx.stat().st_size, "deflated_bytes": deflated_size(b.onnx, zip_path),
            "latency": latency(sess, x, cfg.latency)}


def _pick_quantized(ctx: Context, cfg: CompressConfig, baseline_labels: np.ndarray):
    """`quantize: {mode: auto}`: time each candidate against the fp32 graph, keep the fastest
    that keeps accuracy within budget (static wins ties: it is the smaller file on convs)."""

    def pick(cands: dict[str, Path], fp32: Path) -> tuple[str, dict[str, Any]]:
        ref = session(fp32, cfg.latency.threads)
        x, y = ctx.splits.x["test"], ctx.splits.y["test"]
        _, ref_labels = predict(ref, x)
        rows = {}
        for mode, path in cands.items():
            s = session(path, cfg.latency.threads)
            parent_ms, ms = paired_latency(fp32, path, x, cfg.latency)
            acc = accuracy_gate(y, predict(s, x)[1], ref_labels, baseline_labels, cfg.budget)
            rows[mode] = {"b32_ms": ms, "fp32_b32_ms": parent_ms, "accuracy": acc["accuracy"],
                          "accuracy_ok": acc["passed"]}
        ok = [m for m in rows if rows[m]["accuracy_ok"]] or list(rows)
        mode = min(ok, key=lambda m: (rows[m]["b32_ms"], m != "static"))
        return mode, {"auto": rows}

    return pick


def compress(run: Run, cfg: CompressConfig, variants: list[VariantConfig] | None = None) -> StageResult:
    """Write compress/<name>/ for the baseline and each variant, compress/pareto.json; promote."""
    if getattr(run.recipe.model, "arch", None) == "transformer":  # text: compress/text.py
        from danlu.compress.text import compress_text

        return compress_text(run, cfg, variants)
    ctx = make_context(run, cfg)
    root = run.stage_dir("compress")
    variants = variants if variants is not None else cfg.variants
    base, ctx = load_baseline(run, cfg, ctx, variants, root / "baseline")
    built = {"baseline": base}
    measured = {"baseline": measure_variant(ctx, base, cfg)}
    y = ctx.splits.y["test"]
    base_labels = measured["baseline"]["labels"]
    pick = _pick_quantized(ctx, cfg, base_labels)
    gates: dict[str, dict[str, Any]] = {"baseline": {}}
    for v in variants:
        parent = built[v.from_]
        b = build_variant(ctx, v, parent, root / v.name, pick)
        m = measure_variant(ctx, b, cfg)
        p_ms, c_ms = paired_latency(parent.onnx, b.onnx, ctx.splits.x["test"], cfg.latency)
        gates[v.name] = {"speed": speed_gate(p_ms, c_ms, cfg.latency.speed_tolerance),
                         "accuracy": accuracy_gate(y, m["labels"], measured[v.from_]["labels"],
                                                   base_labels, cfg.budget)}
        built[v.name], measured[v.name] = b, m
    for name, b in built.items():
        _write(run, b, measured[name], gates[name], cfg, "baseline" if name == "baseline"
               else next(v.from_ for v in variants if v.name == name))
    parents = {"baseline": None, **{v.name: v.from_ for v in variants}}
    rows = [_row(name, measured[name], gates[name], built[name], parents[name]) for name in built]
    passing = [r for r in rows if r["passed"]]
    chosen, why = choose(rows, cfg.budget)
    report = {"baseline": "baseline", "baseline_source": base.record["source"],
              "budget": cfg.budget.model_dump(mode="json"),
              "latency": cfg.latency.model_dump(mode="json"), "variants": rows,
              "front": pareto_front(passing),
              "front_accuracy_latency": pareto_front(passing, ("accuracy", "latency")),
              "front_accuracy_size": pareto_front(passing, ("accuracy", "size")),
              "chosen": chosen, "why": why, "promoted": False}
    if cfg.promote:
        promote(run, None if chosen == "baseline" else built[chosen].dir)
        report["promoted"] = chosen != "baseline"
    write_json(root / "pareto.json", report)
    failed = [r["name"] for r in rows if not r["passed"]]
    return StageResult(paths={"pareto": "compress/pareto.json"},
                       metrics={"variants": len(rows) - 1, "passed": len(passing) - 1, "failed": failed,
                                "chosen": chosen, "promoted": report["promoted"]})


def _write(run: Run, b: Built, m: dict[str, Any], gates: dict[str, Any], cfg: CompressConfig,
           parent: str) -> None:
    record = {"variant": b.name, "from": parent, "steps": b.steps, **b.record, "gates": gates,
              "params": m["params"], "nonzero_params": m["nonzero_params"],
              "size_bytes": m["size_bytes"], "deflated_bytes": m["deflated_bytes"],
              "latency": m["latency"], "quantized": b.quantized,
              "predictions": "predictions.npz"}
    write_json(b.dir / "compression.json", record)
    passed = all(g["passed"] for g in gates.values())
    write_variant_package(run, b.dir, b.name, {"test": m["metrics"], "gate": {"passed": passed}},
                          b.parity, record, b.zipped)


def _row(name: str, m: dict[str, Any], gates: dict[str, Any], b: Built,
         parent: str | None) -> dict[str, Any]:
    reasons = [g["reason"] for g in gates.values() if not g["passed"]]
    return {"name": name, "from": parent, "passed": not reasons,
            "status": "rejected" if reasons else "passed",
            "reasons": reasons, "accuracy": m["accuracy"], "accuracy_ci": m["accuracy_ci"],
            "f1_macro": m["metrics"]["f1_macro"],
            "distillation_gain": b.record.get("distill", {}).get("gain"),
            "vs_baseline": gates.get("accuracy", {}).get("vs_baseline"),
            "val_accuracy": m["val_accuracy"], "params": m["params"], "nonzero_params": m["nonzero_params"],
            "size_bytes": m["size_bytes"], "deflated_bytes": m["deflated_bytes"],
            "b1_ms": m["latency"]["b1_ms"], "b32_ms": m["latency"]["b32_ms"],
            "throughput_rows_s": m["latency"]["throughput_rows_s"], "steps": b.steps,
            "quantized": b.quantized,
            "vs_parent": {k: gates[k] for k in gates} if gates else {},
            "dir": f"compress/{name}"}


def compress_run(run_dir: str | Path, overrides: list[str] | None = None, search: bool = False,
                 trials: int | None = None) -> StageResult:
    """`danlu compress RUN`: the compress stage on a finished run (its recipe's `compress:`
    section, or the defaults when it has none), recorded in the run's manifest and recipe."""
    from danlu.recipe import load_recipe
    from danlu.runs import atomic_write, cache_key

    run = Run.open(run_dir)
    text = run.path("train", "model", "model.safetensors").is_file()
    if text and search:
        from danlu.errors import DanluError

        raise DanluError("--search explores pruning and width students of MLPs and CNNs; for a "
                         "text model list the variants in the recipe's compress section")
    recipe = load_recipe(run.recipe, overrides)
    if recipe.compress is None:
        recipe = load_recipe(recipe, {"compress": CompressConfig().model_dump(mode="json")})
    if (recipe.compress.baseline == "train" and not text
            and not run.path("train", "model.safetensors").is_file()):
        from danlu.errors import DanluError

        raise DanluError(f"{run.dir}: no trained model (train/model.safetensors); finish "
                         f"`danlu run` first, or set compress.baseline to a run or package folder")
    run.recipe = recipe
    atomic_write(run.path("recipe.yaml"), recipe.dump())
    cfg = recipe.compress
    key = cache_key("cli", recipe.section_hash("compress"), str(search), str(trials))
    run.mark("compress", "running", key)
    try:
        variants = None
        if search:
            from danlu.compress.search import search as run_search

            variants = run_search(run, cfg, trials)
        result = compress(run, cfg, variants)
    except BaseException as e:
        run.mark("compress", "failed", key, error=f"{type(e).__name__}: {e}")
        raise
    run.mark("compress", "finished", key, paths=result.paths, metrics=result.metrics)
    return result
