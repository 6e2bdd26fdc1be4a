"""Classification and regression metrics via torchmetrics, one flat dict per split (names as in
metrics.json). Every value here is checked against scikit-learn's to 1e-6 in
tests/evaluate/test_metrics.py."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import functional as tmf

from danlu.evaluate.calibration import calibration

__all__ = ["HEADLINE", "classification_metrics", "curves", "higher_is_better"]

# The metrics a gate, early stopping or a table may name, each higher-is-better.
HEADLINE = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
            "f1_micro", "f1_weighted")
LOWER_IS_BETTER = ("loss", "log_loss", "ece", "mae", "mse", "rmse")


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def classification_metrics(probs: torch.Tensor, y: torch.Tensor, labels: list[str],
                           top_k: tuple[int, ...] = (3, 5), ece_bins: int = 15) -> dict[str, Any]:
    """Accuracy, balanced accuracy, precision/recall/F1 (macro, micro, weighted, per class),
    top-k accuracy, confusion matrix (counts, row-normalized), ROC-AUC and PR-AUC (one-vs-rest;
    the positive class for two classes), log loss and expected calibration error."""
    n = len(labels)
    # float64: the curve metrics sort scores, and float32 ties would move them off sklearn's.
    probs, y = probs.detach().double().cpu(), y.detach().long().cpu()
    preds = probs.argmax(dim=1)
    kw: dict[str, Any] = {"task": "multiclass", "num_classes": n}
    nll = float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-15)), y))
    out: dict[str, Any] = {
        "n": len(y),
        "loss": nll,
        "log_loss": nll,  # the same number under scikit-learn's name
        "accuracy": float(tmf.accuracy(preds, y, average="micro", **kw)),
    }
    for avg in ("macro", "micro", "weighted"):
        out[f"precision_{avg}"] = float(tmf.precision(preds, y, average=avg, **kw))
        out[f"recall_{avg}"] = float(tmf.recall(preds, y, average=avg, **kw))
        out[f"f1_{avg}"] = float(tmf.f1_score(preds, y, average=avg, **kw))
    for k in top_k:
        if k < n:  # top-n accuracy is 1 by definition: not worth a row
            out[f"top{k}_accuracy"] = float(tmf.accuracy(probs, y, top_k=k, average="micro", **kw))
    out.update(_ranking(probs, y, n))
    per = {name: fn(preds, y, average="none", **kw).tolist()
           for name, fn in (("precision", tmf.precision), ("recall", tmf.recall),
                            ("f1", tmf.f1_score))}
    support = torch.bincount(y, minlength=n).tolist()
    out["per_class"] = {lab: {"precision": per["precision"][i], "recall": per["recall"][i],
                              "f1": per["f1"][i], "support": support[i]}
                        for i, lab in enumerate(labels)}
    cm = tmf.confusion_matrix(preds, y, **kw)
    out["confusion_matrix"] = cm.tolist()
    rows = cm.sum(dim=1, keepdim=True).clamp_min(1)
    # Mean recall over the classes present in y (Brodersen et al. 2010), as scikit-learn's
    # balanced_accuracy_score: a class with no true rows has no recall and is left out.
    out["balanced_accuracy"] = float((cm.diag() / rows.squeeze(1))[cm.sum(dim=1) > 0].mean())
    out["confusion_matrix_normalized"] = (cm.double() / rows).tolist()  # each row: recall of a class
    cal = calibration(probs, y, ece_bins)
    out["ece"] = cal["ece"]
    out["reliability"] = cal["reliability"]
    return out


def _ranking(probs: torch.Tensor, y: torch.Tensor, n: int) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision): binary on the positive class, else macro OvR."""
    present = torch.bincount(y, minlength=n)
    if (present == 0).any() or (present == len(y)).any():
        return {}  # a class with no positives (or no negatives) has no ROC curve
    if n == 2:
        p1 = probs[:, 1]
        return {"roc_auc": float(tmf.auroc(p1, y, task="binary")),
                "pr_auc": float(tmf.average_precision(p1, y, task="binary"))}
    kw: dict[str, Any] = {"task": "multiclass", "num_classes": n, "average": "macro"}
    return {"roc_auc": float(tmf.auroc(probs, y, **kw)),
            "pr_auc": float(tmf.average_precision(probs, y, **kw))}


def curves(probs: torch.Tensor, y: torch.Tensor, labels: list[str],
           max_points: int = 200) -> dict[str, Any]:
    """ROC and precision-recall curves per class (one-vs-rest), thinned to max_points each."""
    probs, y = probs.detach().double().cpu(), y.detach().long().cpu()
    n = len(labels)
    out: dict[str, Any] = {"roc": {}, "pr": {}}
    classes = [1] if n == 2 else range(n)
    for c in classes:
        target = (y == c).long()
        if target.sum() in (0, len(y)):
            continue
        fpr, tpr, _ = tmf.roc(probs[:, c], target, task="binary")
        prec, rec, _ = tmf.precision_recall_curve(probs[:, c], target, task="binary")
        out["roc"][labels[c]] = {"fpr": _thin(fpr, max_points), "tpr": _thin(tpr, max_points)}
        out["pr"][labels[c]] = {"recall": _thin(rec, max_points), "precision": _thin(prec, max_points)}
    return out


def _thin(v: torch.Tensor, k: int) -> list[float]:
    if len(v) <= k:
        return [round(float(x), 5) for x in v]
    idx = torch.linspace(0, len(v) - 1, k).round().long()
    return [round(float(x), 5) for x in v[idx]]
