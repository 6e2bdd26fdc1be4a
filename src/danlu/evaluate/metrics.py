"""Classification metrics via torchmetrics, one flat dict per split (names as in metrics.json)."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import functional as tmf

__all__ = ["HEADLINE", "classification_metrics", "higher_is_better"]

# The metrics a gate, early stopping or a table may name, each higher-is-better.
HEADLINE = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_micro", "f1_weighted")


def higher_is_better(metric: str) -> bool:
    return metric not in ("loss",)


def classification_metrics(probs: torch.Tensor, y: torch.Tensor,
                           labels: list[str]) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 (macro, micro, weighted, per class), confusion matrix, loss."""
    n = len(labels)
    probs, y = probs.detach().float().cpu(), y.detach().long().cpu()
    preds = probs.argmax(dim=1)
    kw: dict[str, Any] = {"task": "multiclass", "num_classes": n}
    out: dict[str, Any] = {
        "n": len(y),
        "loss": float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), y)),
        "accuracy": float(tmf.accuracy(preds, y, average="micro", **kw)),
    }
    for avg in ("macro", "micro", "weighted"):
        out[f"precision_{avg}"] = float(tmf.precision(preds, y, average=avg, **kw))
        out[f"recall_{avg}"] = float(tmf.recall(preds, y, average=avg, **kw))
        out[f"f1_{avg}"] = float(tmf.f1_score(preds, y, average=avg, **kw))
    per = {name: tmf.__dict__[fn](preds, y, average="none", **kw).tolist()
           for name, fn in (("precision", "precision"), ("recall", "recall"), ("f1", "f1_score"))}
    support = torch.bincount(y, minlength=n).tolist()
    out["per_class"] = {lab: {"precision": per["precision"][i], "recall": per["recall"][i],
                              "f1": per["f1"][i], "support": support[i]}
                        for i, lab in enumerate(labels)}
    out["confusion_matrix"] = tmf.confusion_matrix(preds, y, **kw).tolist()
    return out
