"""The evaluate stage: the trained model's outputs on the val and test splits, scored by its
head (metrics, intervals, warnings), then the gate."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from danlu import track
from danlu.data.stage import load_splits
from danlu.errors import GateError, RecipeError
from danlu.evaluate.baseline import gbdt_baseline
from danlu.evaluate.config import EvaluateConfig
from danlu.evaluate.summary import baseline_line
from danlu.runs import Run, StageResult, atomic_write, write_json

__all__ = ["check_gate", "evaluate", "preview_values", "save_predictions"]

# Characters of each test text kept in predictions.npz for the report's worst mistakes.
TEXT_CHARS = 300


def preview_values(values: dict[str, np.ndarray]) -> np.ndarray | None:
    """What predictions.npz keeps of the inputs for the report: a single feature's values, texts
    cut to TEXT_CHARS as fixed-width strings (they load without pickle); None for several."""
    if len(values) != 1:
        return None
    x = next(iter(values.values()))
    if x.dtype == object:
        return np.array([str(t)[:TEXT_CHARS] for t in x], dtype=f"<U{TEXT_CHARS}")
    return np.asarray(x, np.float32)


def save_predictions(path, probs: np.ndarray, y: np.ndarray, rows: np.ndarray,
                     x: np.ndarray | None = None) -> None:
    """Per-row outputs, targets, 1-based source row numbers and (one feature) its values, so the
    report can show mistakes without the model (plain arrays, no pickle)."""
    buf = io.BytesIO()
    extra = {"x": x} if x is not None else {}
    y = np.asarray(y) if np.asarray(y).dtype.kind == "f" else np.asarray(y, np.int64)
    np.savez_compressed(buf, probs=np.asarray(probs, np.float32), y=y,
                        rows=np.asarray(rows, np.int64), **extra)
    atomic_write(path, buf.getvalue())


def evaluate(run: Run, cfg: EvaluateConfig) -> StageResult:
    """Write eval/metrics.json ({"val": {...}, "test": {...}, "gate": {...}}), the test split's
    predictions.npz and curves.json; raise on a missed gate."""
    from danlu.models.load import load_model
    from danlu.models.packaged import predict

    splits = load_splits(run)
    model = load_model(run.path("train", "model"))
    module, head = model.packaged(), model.head
    out = run.stage_dir("eval")
    metrics: dict[str, Any] = {}
    for split in ("val", "test"):
        outputs = predict(module, splits.values[split])
        metrics[split] = head.evaluate(outputs[0], splits.y[split], cfg, run.recipe.seed)
        unseen = {f.name: f.unseen(splits.values[split][f.name]) for f in model.features}
        unseen = {k: v for k, v in unseen.items() if v is not None}
        if unseen:  # values never seen in training (a category's __unknown__): counted
            metrics[split]["unseen"] = unseen
        if split == "test":
            baseline = gbdt_baseline(run, splits, head, outputs[0], cfg, run.recipe.seed)
            save_predictions(out / "predictions.npz", outputs[0], splits.y[split],
                             splits.rows[split], preview_values(splits.values[split]))
            curves = head.curves(outputs[0], splits.y[split])
            if curves is not None:
                write_json(out / "curves.json", curves)
    gate = check_gate(metrics["test"], cfg.gate, head)
    metrics["gate"] = gate
    metrics["warnings"] = metrics["test"].get("warnings", [])
    write_json(out / "metrics.json", metrics)
    with track.tracker(run) as tracked:  # test.<metric>, test.<metric>_ci_low/_ci_high
        tracked.log_split("test", metrics["test"])
        tracked.set_tags({"danlu.gate": "passed" if gate["passed"] else "failed"})
    if not gate["passed"]:
        misses = ", ".join(f"{m} {r['value']:.4f} " + (f"> {r['max']}" if "max" in r
                                                          else f"< {r['min']}")
                           for m, r in gate["checks"].items() if not r["passed"])
        raise GateError(f"evaluation gate failed on the test split: {misses}; the model is not "
                        f"packaged (metrics in {run.path('eval', 'metrics.json')})")
    paths = {"metrics": "eval/metrics.json", "predictions": "eval/predictions.npz",
             "curves": "eval/curves.json"}
    headline = head.headline(metrics["test"])
    if baseline is not None:
        paths["baseline"] = "eval/baseline.json"
        headline["baseline"] = baseline_line(baseline)
    return StageResult(paths=paths, metrics=headline)


def check_gate(test: dict, gate: dict[str, float], head: Any = None) -> dict:
    """Each gate metric against its bound: a maximum where the head says lower is better
    (rmse, mae, mape), else a minimum; an unknown metric name is a recipe error."""
    checks = {}
    for name, bound in gate.items():
        value = test.get(name)
        if not isinstance(value, float):
            known = [k for k, v in test.items() if isinstance(v, float)]
            raise RecipeError(f"evaluate.gate.{name}", got=name,
                              expected=f"a test metric: one of {', '.join(known)}")
        if head is not None and head.lower_is_better(name):
            checks[name] = {"max": bound, "value": value, "passed": value <= bound}
        else:
            checks[name] = {"min": bound, "value": value, "passed": value >= bound}
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}
