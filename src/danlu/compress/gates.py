"""Gates every variant must pass to ship: not slower than its parent, the head's metric within
budget (and, for a head with labels, the parent's labels kept)."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.compress.config import BudgetConfig

__all__ = ["compare_to_baseline", "metric_gate", "speed_gate"]


def speed_gate(parent_ms: float, child_ms: float, tolerance: float,
               runtimes: tuple[str, str] | None = None) -> dict[str, Any]:
    """Rejects a child slower than its parent at batch 32 by more than `tolerance` (a fraction);
    `runtimes`: (the child's, the parent's) as served, named in the reason."""
    passed = child_ms <= parent_ms * (1 + tolerance)
    out = {"passed": passed, "parent_b32_ms": parent_ms, "b32_ms": child_ms,
           "speedup": parent_ms / child_ms if child_ms > 0 else float("inf"), "tolerance": tolerance}
    if not passed:
        how = f" ({runtimes[0]} vs its parent's {runtimes[1]})" if runtimes else ""
        out["reason"] = (f"slower than its parent at batch 32 as served{how}: {child_ms:.3f} ms vs "
                         f"{parent_ms:.3f} ms ({child_ms / parent_ms:.2f}x, tolerance "
                         f"{1 + tolerance:.2f}x)")
    return out


def compare_to_baseline(y: np.ndarray, labels: np.ndarray, baseline_labels: np.ndarray,
                        seed: int = 0) -> dict[str, Any]:
    """The accuracy difference to the baseline on the same test rows, with a paired bootstrap
    95% interval and McNemar's test (danlu.evaluate.stats.compare_labels), so "no worse" is a
    statement."""
    from danlu.evaluate.stats import compare_labels

    return compare_labels(y, labels, baseline_labels, seed=seed)


def metric_gate(head: Any, y: np.ndarray, out: tuple[np.ndarray, ...],
                parent_out: tuple[np.ndarray, ...], baseline_out: tuple[np.ndarray, ...],
                metric: str, max_drop: float, budget: BudgetConfig) -> dict[str, Any]:
    """The test `metric`'s drop vs the baseline within `max_drop` (counted by the head:
    classification absolutely, a regression error relatively), and, for a head with labels,
    label agreement with the parent; both hard. `out`s are package outputs as served."""
    value = float(head.scores(out[0], y)[metric])
    base = float(head.scores(baseline_out[0], y)[metric])
    drop, kind = head.metric_drop(metric, value, base)
    agree = head.agreement(parent_out, out)
    reasons = []
    if drop > max_drop + 1e-12:
        by = f"{drop * 100:.2f} pt" if kind == "absolute" else f"{drop:.2%}"
        reasons.append(f"test {metric} {value:.4g} is worse than the baseline's {base:.4g} by "
                       f"{by} (budget: max_metric_drop {max_drop}, {kind})")
    if agree is not None and agree < budget.min_label_agreement:
        reasons.append(f"gives its parent's label on {agree:.2%} of {len(y)} test rows "
                       f"(budget: min_label_agreement {budget.min_label_agreement:.0%})")
    out_doc: dict[str, Any] = {
        "passed": not reasons, "metric": metric, metric: value, f"baseline_{metric}": base,
        "drop": drop, "drop_kind": kind, "max_metric_drop": max_drop,
        "vs_baseline": head.compare(y, out[0], baseline_out[0])}
    if agree is not None:  # a head with labels: the label gate and the classic keys
        out_doc.update(label_agreement_with_parent=agree,
                       label_agreement_with_baseline=head.agreement(baseline_out, out),
                       max_accuracy_drop=max_drop, min_label_agreement=budget.min_label_agreement)
    if reasons:
        out_doc["reason"] = "; ".join(reasons)
    return out_doc
