"""Reading a split's metrics for people: the imbalance warning, which metrics lead, and
`0.973 [0.958, 0.986]` formatting. Pure Python (the CLI and the report use it without torch)."""

from __future__ import annotations

from typing import Any

__all__ = ["baseline_line", "format_ci", "headline_rows", "imbalance_warnings", "lead_metrics"]

# The order a table shows metrics in, when accuracy can be trusted.
# A regression split (number head) has only the last four.
REGRESSION = ("rmse", "mae", "r2", "mape")
TABLE = ("accuracy", "balanced_accuracy", "f1_macro", "precision_macro", "recall_macro",
         "f1_weighted", "roc_auc", "pr_auc", "top3_accuracy", "log_loss", "ece", *REGRESSION)
# When it cannot (imbalanced classes), the class-averaged metrics lead.
TABLE_IMBALANCED = ("f1_macro", "balanced_accuracy", "precision_macro", "recall_macro",
                    "accuracy", "f1_weighted", "roc_auc", "pr_auc", "top3_accuracy", "log_loss", "ece",
                    *REGRESSION)


def imbalance_warnings(split: dict[str, Any], labels: list[str], majority_share: float,
                       accuracy_gap: float) -> list[dict[str, Any]]:
    """Warnings (dicts with a `message`) when accuracy misleads on this split; [] when it does not."""
    support = [split["per_class"][lab]["support"] for lab in labels]
    total = sum(support) or 1
    top = max(range(len(labels)), key=lambda i: support[i])
    share = support[top] / total
    gap = abs(split["accuracy"] - split["balanced_accuracy"])
    why = []
    if share > majority_share:
        why.append(f"class {labels[top]!r} holds {share:.0%} of the rows (limit {majority_share:.0%}), "
                   f"so always predicting it scores accuracy {share:.3f}")
    if gap > accuracy_gap:
        why.append(f"accuracy {split['accuracy']:.3f} and balanced accuracy "
                   f"{split['balanced_accuracy']:.3f} differ by {gap:.3f} (limit {accuracy_gap})")
    if not why:
        return []
    return [{"kind": "imbalance", "majority_class": labels[top], "majority_share": share,
             "accuracy_gap": gap,
             "message": "accuracy misleads here: " + "; ".join(why)
                        + ". Read macro-F1 and balanced accuracy instead."}]


def lead_metrics(split: dict[str, Any]) -> tuple[str, ...]:
    """Metric names in the order to show them: macro-F1 and balanced accuracy first when the
    split carries an imbalance warning."""
    imbalanced = any(w.get("kind") == "imbalance" for w in split.get("warnings", []))
    return TABLE_IMBALANCED if imbalanced else TABLE


def format_ci(value: float, ci: list[float] | None, digits: int = 3) -> str:
    """0.973 [0.958, 0.986] (or just 0.973 without an interval)."""
    if ci is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def headline_rows(split: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, "value [low, high]") for each metric the split has, in lead order."""
    ci = split.get("ci", {})
    return [(k, format_ci(split[k], ci.get(k))) for k in lead_metrics(split)
            if isinstance(split.get(k), float)]


def baseline_line(b: dict[str, Any]) -> str:
    """eval/baseline.json in one line: "GBDT baseline: accuracy 0.950 [0.920, 0.975], danlu - GBDT
    = +0.012 [-0.010, 0.034], McNemar p 0.410"."""
    c = b["comparison"]
    metric = c["metric"]

    def f(v: float, sign: str = "") -> str:
        return f"{v:{sign}.3f}" if metric == "accuracy" else f"{v:{sign}.4g}"

    ci = b["test"].get("ci", {}).get(metric)
    value = f(b["test"][metric]) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")
    line = (f"GBDT baseline: {metric} {value}, danlu - GBDT = {f(c['diff'], '+')} "
            f"[{f(c['ci'][0], '+')}, {f(c['ci'][1], '+')}]")
    if "mcnemar" in c:
        line += f", McNemar p {c['mcnemar']['p_value']:.3g}"
    return line
