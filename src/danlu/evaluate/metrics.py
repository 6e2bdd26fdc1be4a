"""Classification metrics, one flat dict per split (names as in metrics.json), computed by
scikit-learn's `metrics` (already loaded by the split; torchmetrics, used before, cost 2 s of
import in every training process). tests/evaluate/test_metrics.py checks each value against
scikit-learn's own function called as a user would, and the edge cases (a class missing from a
split, a class predicted but absent)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn import metrics as skm

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
    p, t = probs.numpy(), y.numpy()
    pred = p.argmax(axis=1)
    nll = float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-15)), y))
    out: dict[str, Any] = {
        "n": len(t),
        "loss": nll,
        "log_loss": nll,  # the same number under scikit-learn's name
        "accuracy": float((pred == t).mean()) if len(t) else 0.0,
    }
    for avg in ("macro", "micro", "weighted"):
        # Averages over the classes in y or in the predictions (a class neither true nor
        # predicted has no precision or recall to average); 0 where a ratio has no denominator.
        prec, rec, f1, _ = skm.precision_recall_fscore_support(t, pred, average=avg, zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(prec), float(rec), float(f1)
    for k in top_k:
        if k < n:  # top-n accuracy is 1 by definition: not worth a row
            out[f"top{k}_accuracy"] = float(skm.top_k_accuracy_score(t, p, k=k, labels=np.arange(n)))
    out.update(_ranking(p, t, n))
    prec, rec, f1, support = skm.precision_recall_fscore_support(
        t, pred, labels=np.arange(n), average=None, zero_division=0)
    out["per_class"] = {lab: {"precision": float(prec[i]), "recall": float(rec[i]),
                              "f1": float(f1[i]), "support": int(support[i])}
                        for i, lab in enumerate(labels)}
    cm = torch.from_numpy(skm.confusion_matrix(t, pred, labels=np.arange(n)))
    out["confusion_matrix"] = cm.tolist()
    rows = cm.sum(dim=1, keepdim=True).clamp_min(1)
    # Mean recall over the classes present in y (Brodersen et al. 2010), as scikit-learn's
    # balanced_accuracy_score: a class with no true rows has no recall and is left out.
    out["balanced_accuracy"] = float((cm.double().diag() / rows.squeeze(1))[cm.sum(dim=1) > 0].mean())
    out["confusion_matrix_normalized"] = (cm.double() / rows).tolist()  # each row: recall of a class
    cal = calibration(probs, y, ece_bins)
    out["ece"] = cal["ece"]
    out["reliability"] = cal["reliability"]
    return out


def _ranking(p: np.ndarray, t: np.ndarray, n: int) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision): binary on the positive class, else the macro
    mean of each class against the rest."""
    present = np.bincount(t, minlength=n)
    if (present == 0).any() or (present == len(t)).any():
        return {}  # a class with no positives (or no negatives) has no ROC curve
    classes = [1] if n == 2 else range(n)
    return {"roc_auc": float(np.mean([skm.roc_auc_score(t == c, p[:, c]) for c in classes])),
            "pr_auc": float(np.mean([skm.average_precision_score(t == c, p[:, c]) for c in classes]))}


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
        fpr, tpr, _ = skm.roc_curve(target.numpy(), probs[:, c].numpy(), drop_intermediate=False)
        prec, rec, _ = skm.precision_recall_curve(target.numpy(), probs[:, c].numpy(),
                                                  drop_intermediate=False)
        out["roc"][labels[c]] = {"fpr": _thin(fpr, max_points), "tpr": _thin(tpr, max_points)}
        out["pr"][labels[c]] = {"recall": _thin(rec, max_points), "precision": _thin(prec, max_points)}
    return out


def _thin(v: np.ndarray, k: int) -> list[float]:
    if len(v) <= k:
        return [round(float(x), 5) for x in v]
    idx = np.linspace(0, len(v) - 1, k).round().astype(int)
    return [round(float(x), 5) for x in v[idx]]
