"""Pareto fronts over (accuracy up, latency down, size down) and the choice under a budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from danlu.compress.config import BudgetConfig

__all__ = ["choose", "pareto_front"]

# (key in a row, +1 maximize / -1 minimize)
AXES = {"accuracy": ("accuracy", 1), "latency": ("b32_ms", -1), "size": ("deflated_bytes", -1)}


def _dominates(a: dict, b: dict, axes: Sequence[tuple[str, int]]) -> bool:
    ge = all(a[k] * s >= b[k] * s for k, s in axes)
    gt = any(a[k] * s > b[k] * s for k, s in axes)
    return ge and gt


def pareto_front(rows: list[dict[str, Any]], objectives: Sequence[str] = ("accuracy", "latency", "size")
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
    best = min(fits, key=lambda r: (r[primary], r[secondary], -r["accuracy"]))
    word = "smallest" if primary == "deflated_bytes" else "fastest"
    return best["name"], [*why, f"{best['name']}: the {word} of {len(fits)} rows that pass the "
                          "gates and fit the budget"]
