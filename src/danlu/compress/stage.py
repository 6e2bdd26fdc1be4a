"""The compress stage, one path for every model family: the baseline and each variant built as
a package, all measured as served, gated, written; the Pareto front, the choice, promotion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from danlu import track
from danlu.compress.config import CompressConfig, VariantConfig
from danlu.compress.context import Context
from danlu.compress.gates import metric_gate, speed_gate
from danlu.compress.measure import Measured, measure
from danlu.compress.pareto import report, row
from danlu.compress.plan import prepare
from danlu.compress.variants import Variant, build_variant
from danlu.runs import Run, StageResult, write_json

__all__ = ["compress", "compress_run"]


def _gates(ctx: Context, b: Variant, built: dict[str, Variant],
           measured: dict[str, Measured]) -> dict[str, Any]:
    """Speed (vs the parent, from the one interleaved timing) and the budget's metric (vs the
    baseline; for a head with labels also the parent's labels), the latter named by its metric."""
    if b.parent is None:
        return {}
    m, pm = measured[b.name], measured[b.parent]
    return {"speed": speed_gate(pm.latency["b32_ms"], m.latency["b32_ms"],
                                ctx.cfg.latency.speed_tolerance,
                                (b.runtime, built[b.parent].runtime)),
            ctx.metric: metric_gate(ctx.head, ctx.y("test"), m.outputs, pm.outputs,
                                    measured["baseline"].outputs, ctx.metric, ctx.max_drop,
                                    ctx.cfg.budget)}


def _parity(ctx: Context, b: Variant, measured: dict[str, Measured]) -> dict[str, Any] | None:
    """A quantized graph against its parent as served, on the test rows (information; the
    metric gate decides)."""
    if not b.quantized or b.parent is None:
        return None
    m, pm = measured[b.name], measured[b.parent]
    return {"rows": len(ctx.y("test")), "reference": f"{b.parent}, as served",
            "max_abs_diff": float(abs(m.outputs[0].astype(float)
                                      - pm.outputs[0].astype(float)).max()),
            "label_agreement": ctx.head.agreement(pm.outputs, m.outputs)}


def _track_variant(tracked: track.Tracker, r: dict[str, Any]) -> None:
    """A variant's row of pareto.json as a child run compress/<name>: what was done (params),
    its metric with the interval, size, latency, throughput and whether it passed (metrics)."""
    metric = r["metric"]
    low, high = r.get(f"{metric}_ci") or (None, None)
    with tracked.child(f"compress/{r['name']}", tags={"danlu.stage": "compress"}, params={
            "from": r["from"], "steps": r["steps"], "runtime": r["runtime"], "dtype": r["dtype"],
            "quantized": r["quantized"]}) as t:
        t.log_metrics({k: r[k] for k in (metric, f"val_{metric}", "params", "nonzero_params",
                                         "size_bytes", "deflated_bytes", "b1_ms", "b32_ms",
                                         "throughput_rows_s", "speedup_b32_vs_baseline", "passed")}
                      | {f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                         "size_mb": r["size_bytes"] / 1e6})


def compress(run: Run, cfg: CompressConfig, variants: list[VariantConfig] | None = None) -> StageResult:
    """Write compress/<name>/ for the baseline and each variant, compress/pareto.json; promote."""
    from danlu.compress.package import promote, write_variant

    root = run.stage_dir("compress")
    ctx, base, variants, source = prepare(run, cfg, variants, root / "baseline")
    built = {"baseline": base}
    for i, v in enumerate(variants):
        built[v.name] = build_variant(ctx, v, built[v.from_], root / v.name,
                                      f"compress.variants[{i}]")
    measured = measure(ctx, built)
    rows = []
    with track.tracker(run) as tracked:
        for name, b in built.items():
            gates = _gates(ctx, b, built, measured)
            write_variant(ctx, b, measured[name], gates, _parity(ctx, b, measured))
            rows.append(row(b, measured[name], gates, measured["baseline"].latency["b32_ms"]))
            _track_variant(tracked, rows[-1])
    doc = report(rows, cfg, base.record["source"], source)
    doc["budget_applied"] = {"metric": ctx.metric, "max_metric_drop": ctx.max_drop}
    chosen = doc["chosen"]
    tracked.set_tags({"danlu.compress.chosen": chosen})
    if cfg.promote:
        promote(run, None if chosen == "baseline" else built[chosen].dir)
        doc["promoted"] = chosen != "baseline"
    write_json(root / "pareto.json", doc)
    return StageResult(paths={"pareto": "compress/pareto.json"},
                       metrics={"variants": len(rows) - 1,
                                "passed": sum(r["passed"] for r in rows) - 1,
                                "failed": [r["name"] for r in rows if not r["passed"]],
                                "chosen": chosen, "promoted": doc["promoted"]})


def compress_run(run_dir: str | Path, overrides: list[str] | None = None, search: bool = False,
                 trials: int | None = None) -> StageResult:
    """`danlu compress RUN`: the compress stage on a finished run (its recipe's `compress:`
    section, or the defaults when it has none), recorded in the run's manifest and recipe."""
    from danlu.errors import DanluError
    from danlu.recipe import load_recipe
    from danlu.runs import atomic_write, cache_key

    run = Run.open(run_dir)
    recipe = load_recipe(run.recipe, overrides)
    if recipe.compress is None:
        recipe = load_recipe(recipe, {"compress": CompressConfig().model_dump(mode="json")})
    if (recipe.compress.baseline == "train"
            and not run.path("train", "model", "model.json").is_file()):
        raise DanluError(f"{run.dir}: no trained model (train/model/model.json); finish "
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
