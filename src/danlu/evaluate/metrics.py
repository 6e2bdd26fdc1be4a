"""Classification metrics, one flat dict per split (names as in metrics.json), in numpy from the
confusion matrix and the score ranks, with scikit-learn's definitions; the curves are
scikit-learn's own. Training scores the validation split with these every epoch, so they must be
cheap: 1-2 ms for 64 rows and 10 classes (scikit-learn's functions called one by one took 32 ms,
torchmetrics 5 ms, and torchmetrics cost 2 s of import in every training process).
tests/evaluate/test_metrics.py checks each value against scikit-learn's own function called as a
user would, to 1e-6, and the edge cases (a class missing from a split, a class predicted but
absent, tied scores)."""

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
    cm_np = np.bincount(t * n + pred, minlength=n * n).reshape(n, n)
    tp, support, predicted = np.diag(cm_np).astype(float), cm_np.sum(axis=1), cm_np.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 where a ratio has no denominator
        per = {"precision": np.where(predicted > 0, tp / predicted, 0.0),
               "recall": np.where(support > 0, tp / support, 0.0),
               "f1": np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)}
    # Averages over the classes in y or in the predictions (a class neither true nor predicted
    # has no precision or recall to average), as scikit-learn's `average=` without `labels`.
    seen = (support > 0) | (predicted > 0)
    micro = float(tp.sum() / max(len(t), 1))
    for name, v in per.items():
        out[f"{name}_macro"] = float(v[seen].mean()) if seen.any() else 0.0
        out[f"{name}_micro"] = micro
        out[f"{name}_weighted"] = float((v * support).sum() / max(support.sum(), 1))
    for k in top_k:
        if k < n:  # top-n accuracy is 1 by definition: not worth a row
            # ties broken as scikit-learn's top_k_accuracy_score breaks them
            top = np.argsort(p, axis=1, kind="mergesort")[:, ::-1][:, :k]
            out[f"top{k}_accuracy"] = float((top == t[:, None]).any(axis=1).mean())
    out.update(_ranking(p, t, n))
    out["per_class"] = {lab: {"precision": float(per["precision"][i]),
                              "recall": float(per["recall"][i]), "f1": float(per["f1"][i]),
                              "support": int(support[i])}
                        for i, lab in enumerate(labels)}
    cm = torch.from_numpy(cm_np)
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
    return {"roc_auc": float(np.mean([_auc(t == c, p[:, c]) for c in classes])),
            "pr_auc": float(np.mean([_average_precision(t == c, p[:, c]) for c in classes]))}


def _auc(pos: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic, tied scores at their average rank (equal to
    scikit-learn's trapezoidal roc_auc_score)."""
    _, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inv]  # 1-based average ranks
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_precision(pos: np.ndarray, score: np.ndarray) -> float:
    """Average precision as scikit-learn's average_precision_score: sum over the distinct
    thresholds, highest first, of (recall gained) x precision."""
    order = np.argsort(score, kind="mergesort")[::-1]
    s, y = score[order], pos[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each distinct score
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


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
