"""The rows of compress/pareto.json (one per variant, the same function for every model family
and head), Pareto fronts over (the budget's metric in its good direction, latency down, size
down) and the choice under a budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from danlu.compress.config import BudgetConfig, CompressConfig

if TYPE_CHECKING:
    from danlu.compress.measure import Measured
    from danlu.compress.variants import Variant

__all__ = ["choose", "pareto_front", "report", "row"]

# (key in a row, +1 maximize / -1 minimize); "metric" is each row's `score`: the budget's metric
# signed so that larger is better (an RMSE is negated).
AXES = {"metric": ("score", 1), "accuracy": ("score", 1), "latency": ("b32_ms", -1),
        "size": ("deflated_bytes", -1)}


def _dominates(a: dict, b: dict, axes: Sequence[tuple[str, int]]) -> bool:
    ge = all(a[k] * s >= b[k] * s for k, s in axes)
    gt = any(a[k] * s > b[k] * s for k, s in axes)
    return ge and gt


def pareto_front(rows: list[dict[str, Any]], objectives: Sequence[str] = ("metric", "latency", "size")
                 ) -> list[str]:
    """Names of the rows no other row dominates on `objectives` (names from AXES)."""
    axes = [AXES[o] for o in objectives]
    return [r["name"] for r in rows if not any(_dominates(o, r, axes) for o in rows if o is not r)]


def choose(rows: list[dict[str, Any]], budget: BudgetConfig) -> tuple[str, list[str]]:
    """The row to ship: among passing rows within the latency/size limits, the smallest (or the
    fastest, budget.prefer); the baseline when no variant fits. Returns (name, why)."""
    fits, why = [], []
    for r in rows:
        if not r["passed"]:
            continue
        if budget.max_latency_ms is not None and r["b32_ms"] > budget.max_latency_ms:
            why.append(f"{r['name']}: {r['b32_ms']:.3f} ms > max_latency_ms {budget.max_latency_ms}")
            continue
        if budget.max_size_mb is not None and r["deflated_bytes"] / 1e6 > budget.max_size_mb:
            why.append(f"{r['name']}: {r['deflated_bytes'] / 1e6:.3f} MB > max_size_mb "
                       f"{budget.max_size_mb}")
            continue
        fits.append(r)
    if not fits:
        return "baseline", [*why, "no row fits the budget: the baseline stays"]
    primary = "deflated_bytes" if budget.prefer == "size" else "b32_ms"
    secondary = "b32_ms" if budget.prefer == "size" else "deflated_bytes"
    best = min(fits, key=lambda r: (r[primary], r[secondary], -r["score"]))
    word = "smallest" if primary == "deflated_bytes" else "fastest"
    return best["name"], [*why, f"{best['name']}: the {word} of {len(fits)} rows that pass the "
                          "gates and fit the budget"]


def row(b: Variant, m: Measured, gates: dict[str, Any], baseline_b32_ms: float) -> dict[str, Any]:
    """One variant's row of pareto.json: what was done, what it measured (as served), its gates."""
    reasons = [g["reason"] for g in gates.values() if not g["passed"]]
    lat, metric = m.latency, m.metric
    return {"name": b.name, "from": b.parent, "passed": not reasons,
            "status": "rejected" if reasons else "passed", "reasons": reasons,
            "metric": metric, "lower_is_better": m.lower_better, **m.headline, metric: m.value,
            "score": -m.value if m.lower_better else m.value, f"{metric}_ci": m.metric_ci,
            "distillation_gain": b.record.get("distill", {}).get("gain"),
            "vs_baseline": gates.get(metric, {}).get("vs_baseline"),
            f"val_{metric}": m.val_metric, "params": m.params, "nonzero_params": m.nonzero_params,
            "size_bytes": m.size_bytes, "deflated_bytes": m.deflated_bytes,
            "b1_ms": lat["b1_ms"], "b32_ms": lat["b32_ms"],
            "throughput_rows_s": lat["throughput_rows_s"],
            "speedup_b32_vs_baseline": baseline_b32_ms / lat["b32_ms"],
            "runtime": lat["runtime"], "dtype": lat["dtype"], "steps": b.steps,
            "quantized": b.quantized, "vs_parent": dict(gates), "dir": f"compress/{b.name}"}


def report(rows: list[dict[str, Any]], cfg: CompressConfig, source: dict[str, Any],
           variants_from: str) -> dict[str, Any]:
    """pareto.json: every row, the fronts of the passing rows, the choice and why."""
    passing = [r for r in rows if r["passed"]]
    chosen, why = choose(rows, cfg.budget)
    return {"baseline": "baseline", "baseline_source": source, "variants_from": variants_from,
            "budget": cfg.budget.model_dump(mode="json"),
            "latency": cfg.latency.model_dump(mode="json"), "variants": rows,
            "front": pareto_front(passing),
            "metric": rows[0]["metric"] if rows else None,
            "front_accuracy_latency": pareto_front(passing, ("metric", "latency")),
            "front_accuracy_size": pareto_front(passing, ("metric", "size")),
            "chosen": chosen, "why": why, "promoted": False}
