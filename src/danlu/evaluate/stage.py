"""The evaluate stage: metrics of the trained model on the val and test splits, then the gate."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from danlu.data.stage import load_splits
from danlu.errors import GateError, RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.evaluate.metrics import classification_metrics, curves
from danlu.evaluate.stats import bootstrap_ci
from danlu.evaluate.summary import imbalance_warnings
from danlu.runs import Run, StageResult, atomic_write, write_json
from danlu.train.checkpoint import load_packaged

__all__ = ["check_gate", "evaluate", "score"]


def score(probs: np.ndarray, y: np.ndarray, labels: list[str], cfg: EvaluateConfig,
          seed: int) -> dict[str, Any]:
    """One split's metrics, their bootstrap intervals (`ci`) and imbalance `warnings`."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.int64)
    m = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y), labels)
    b = cfg.bootstrap
    if b.resamples:
        m["ci"] = bootstrap_ci(y, probs.argmax(axis=1), probs, resamples=b.resamples,
                               confidence=b.confidence, seed=seed, n_classes=len(labels))
        m["ci_method"] = {"kind": "percentile bootstrap", "resamples": b.resamples,
                          "confidence": b.confidence, "seed": seed}
    m["warnings"] = imbalance_warnings(m, labels, cfg.imbalance.majority_share,
                                       cfg.imbalance.accuracy_gap)
    return m


def save_predictions(path, probs: np.ndarray, y: np.ndarray, rows: np.ndarray,
                     x: np.ndarray | None = None) -> None:
    """Per-row probabilities, labels, 1-based source row numbers and (numeric data) the raw
    features, so the report can show mistakes without the model (plain arrays, no pickle)."""
    buf = io.BytesIO()
    extra = {}
    if x is not None and x.dtype.kind == "U":  # text, cut: fixed-width strings load without pickle
        extra = {"x": x}
    elif x is not None and x.dtype != object:
        extra = {"x": np.asarray(x, np.float32)}
    np.savez_compressed(buf, probs=np.asarray(probs, np.float32), y=np.asarray(y, np.int64),
                        rows=np.asarray(rows, np.int64), **extra)
    atomic_write(path, buf.getvalue())


def evaluate(run: Run, cfg: EvaluateConfig) -> StageResult:
    """Write eval/metrics.json ({"val": {...}, "test": {...}, "gate": {...}}), the test split's
    predictions.npz and curves.json; raise on a missed gate."""
    splits = load_splits(run)
    model = load_packaged(run)
    labels = splits.info["labels"]
    out = run.stage_dir("eval")
    metrics: dict[str, Any] = {}
    text = splits.info.get("kind") == "text"
    for split in ("val", "test"):
        if text:  # tokenized by TextEncoder, batches of similar length (danlu.models.text)
            probs = text_probs(run, model, splits.x[split])
        else:
            with torch.inference_mode():
                probs, _ = model(torch.from_numpy(splits.x[split]))
            probs = probs.double().numpy()
        metrics[split] = score(probs, splits.y[split], labels, cfg, run.recipe.seed)
        if split == "test":
            save_predictions(out / "predictions.npz", probs, splits.y[split], splits.rows[split],
                             cut_texts(splits.x[split]) if text else splits.x[split])
            write_json(out / "curves.json", curves(torch.from_numpy(probs),
                                                   torch.from_numpy(splits.y[split]), labels))
    gate = check_gate(metrics["test"], cfg.gate)
    metrics["gate"] = gate
    metrics["warnings"] = metrics["test"]["warnings"]
    write_json(out / "metrics.json", metrics)
    if not gate["passed"]:
        misses = ", ".join(f"{m} {r['value']:.4f} < {r['min']}" for m, r in gate["checks"].items()
                           if not r["passed"])
        raise GateError(f"evaluation gate failed on the test split: {misses}; the model is not "
                        f"packaged (metrics in {run.path('eval', 'metrics.json')})")
    headline = {k: metrics["test"][k] for k in ("accuracy", "balanced_accuracy", "f1_macro",
                                                  "precision_macro", "recall_macro")}
    return StageResult(paths={"metrics": "eval/metrics.json", "predictions": "eval/predictions.npz",
                              "curves": "eval/curves.json"}, metrics=headline)


# Characters of each test text kept in predictions.npz for the report's worst mistakes.
TEXT_CHARS = 300


def cut_texts(texts: np.ndarray) -> np.ndarray:
    """Texts as a fixed-width unicode array of their first TEXT_CHARS characters."""
    return np.array([str(t)[:TEXT_CHARS] for t in texts], dtype=f"<U{TEXT_CHARS}")


def text_probs(run: Run, model, texts: np.ndarray) -> np.ndarray:
    """Probabilities of a text model for `texts`, tokenized with the saved tokenizer."""
    from danlu.data.tokenize import TextEncoder
    from danlu.models.text import predict_texts
    from danlu.runs import read_json

    spec = read_json(run.path("train", "model.json"))
    encoder = TextEncoder.from_folder(run.path("train", spec["folder"]), spec["max_length"])
    return predict_texts(model, encoder, texts)


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
