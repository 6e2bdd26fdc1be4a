"""Calibration: expected calibration error (torchmetrics) and the reliability diagram's bins.

Multi-class: top-label calibration (confidence = the highest probability, correct = argmax is
the label; Guo et al. 2017). Two classes: the positive class's probability against the label,
as scikit-learn's `calibration_curve` bins it.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import functional as tmf

__all__ = ["calibration", "reliability_bins"]


def calibration(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> dict[str, Any]:
    """{"ece": L1 calibration error over `bins` equal-width bins, "reliability": its bins}."""
    probs, y = probs.detach().double().cpu(), y.detach().long().cpu()
    n = probs.shape[1]
    if n == 2:
        conf, hit = probs[:, 1].contiguous(), y.double()
        ece = tmf.calibration_error(conf, y, task="binary", n_bins=bins, norm="l1")
        kind = "positive class"
    else:
        conf, pred = probs.max(dim=1)
        hit = (pred == y).double()
        ece = tmf.calibration_error(probs, y, task="multiclass", num_classes=n, n_bins=bins,
                                    norm="l1")
        kind = "top label"
    return {"ece": float(ece), "reliability": {"kind": kind, **reliability_bins(conf, hit, bins)}}


def reliability_bins(conf: torch.Tensor, hit: torch.Tensor, bins: int) -> dict[str, list]:
    """Per equal-width bin of confidence: mean confidence, observed frequency, sample count.

    Bins as torchmetrics draws them (a value on an edge goes to the upper bin), except that a
    confidence of exactly 1.0 joins the last bin instead of a bin of its own."""
    edges = torch.linspace(0, 1, bins + 1, dtype=conf.dtype)
    idx = (torch.bucketize(conf, edges, right=True) - 1).clamp(0, bins - 1)
    count = torch.bincount(idx, minlength=bins).double()
    conf_sum = torch.zeros(bins, dtype=torch.double).scatter_add_(0, idx, conf.double())
    hit_sum = torch.zeros(bins, dtype=torch.double).scatter_add_(0, idx, hit.double())
    keep = count > 0
    return {"edges": edges.tolist(),
            "bin": torch.arange(bins)[keep].tolist(),
            "confidence": (conf_sum[keep] / count[keep]).tolist(),
            "frequency": (hit_sum[keep] / count[keep]).tolist(),
            "count": count[keep].long().tolist()}
