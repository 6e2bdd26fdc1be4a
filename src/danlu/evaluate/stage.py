"""The evaluate stage: metrics of the trained model on the val and test splits, then the gate."""

from __future__ import annotations

import torch

from danlu.data.stage import load_splits
from danlu.errors import GateError, RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.evaluate.metrics import classification_metrics
from danlu.runs import Run, StageResult, write_json
from danlu.train.checkpoint import load_packaged

__all__ = ["check_gate", "evaluate"]


def evaluate(run: Run, cfg: EvaluateConfig) -> StageResult:
    """Write eval/metrics.json ({"val": {...}, "test": {...}, "gate": {...}}); raise on a missed gate."""
    splits = load_splits(run)
    model = load_packaged(run)
    labels = splits.info["labels"]
    metrics = {}
    for split in ("val", "test"):
        with torch.inference_mode():
            probs, _ = model(torch.from_numpy(splits.x[split]))
        metrics[split] = classification_metrics(probs, torch.from_numpy(splits.y[split]), labels)
    gate = check_gate(metrics["test"], cfg.gate)
    metrics["gate"] = gate
    write_json(run.stage_dir("eval") / "metrics.json", metrics)
    if not gate["passed"]:
        misses = ", ".join(f"{m} {r['value']:.4f} < {r['min']}" for m, r in gate["checks"].items()
                           if not r["passed"])
        raise GateError(f"evaluation gate failed on the test split: {misses}; the model is not "
                        f"packaged (metrics in {run.path('eval', 'metrics.json')})")
    headline = {k: metrics["test"][k] for k in ("accuracy", "f1_macro", "precision_macro",
                                                  "recall_macro")}
    return StageResult(paths={"metrics": "eval/metrics.json"}, metrics=headline)


def check_gate(test: dict, gate: dict[str, float]) -> dict:
    """Each gate metric against its minimum; an unknown metric name is a recipe error."""
    checks = {}
    for name, minimum in gate.items():
        value = test.get(name)
        if not isinstance(value, float):
            known = [k for k, v in test.items() if isinstance(v, float)]
            raise RecipeError(f"evaluate.gate.{name}", got=name,
                              expected=f"a test metric: one of {', '.join(known)}")
        checks[name] = {"min": minimum, "value": value, "passed": value >= minimum}
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}
