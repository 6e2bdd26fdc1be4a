"""Gates every variant must pass to ship: not slower than its parent, accuracy within budget."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.compress.config import BudgetConfig

__all__ = ["accuracy_gate", "compare_to_baseline", "speed_gate"]


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


def accuracy_gate(y: np.ndarray, labels: np.ndarray, parent_labels: np.ndarray,
                  baseline_labels: np.ndarray, budget: BudgetConfig) -> dict[str, Any]:
    """Label agreement with the parent and the test-accuracy drop vs the baseline, both hard."""
    acc = float((labels == y).mean())
    base = float((baseline_labels == y).mean())
    agree = float((labels == parent_labels).mean())
    drop = base - acc
    reasons = []
    if drop > budget.max_accuracy_drop + 1e-12:
        reasons.append(f"test accuracy {acc:.4f} is {drop * 100:.2f} pt below the baseline's "
                       f"{base:.4f} (budget: max_accuracy_drop {budget.max_accuracy_drop})")
    if agree < budget.min_label_agreement:
        reasons.append(f"gives its parent's label on {agree:.2%} of {len(y)} test rows "
                       f"(budget: min_label_agreement {budget.min_label_agreement:.0%})")
    out = {"passed": not reasons, "accuracy": acc, "baseline_accuracy": base, "drop": drop,
           "vs_baseline": compare_to_baseline(y, labels, baseline_labels),
           "label_agreement_with_parent": agree,
           "label_agreement_with_baseline": float((labels == baseline_labels).mean()),
           "max_accuracy_drop": budget.max_accuracy_drop,
           "min_label_agreement": budget.min_label_agreement}
    if reasons:
        out["reason"] = "; ".join(reasons)
    return out
