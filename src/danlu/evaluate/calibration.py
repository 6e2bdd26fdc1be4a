"""Calibration: expected calibration error and the reliability diagram's bins.

Multi-class: top-label calibration (confidence = the highest probability, correct = argmax is
the label; Guo et al. 2017). Two classes: the positive class's probability against the label,
as scikit-learn's `calibration_curve` bins it.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["calibration", "reliability_bins"]


def calibration(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> dict[str, Any]:
    """{"ece": L1 calibration error over `bins` equal-width bins, "reliability": its bins}."""
    probs, y = probs.detach().double().cpu(), y.detach().long().cpu()
    if probs.shape[1] == 2:
        conf, hit = probs[:, 1].contiguous(), y.double()
        kind = "positive class"
    else:
        conf, pred = probs.max(dim=1)
        hit = (pred == y).double()
        kind = "top label"
    rel = reliability_bins(conf, hit, bins)
    # ECE (L1): the bins' |observed frequency - mean confidence|, weighted by their share of rows
    count = torch.tensor(rel["count"], dtype=torch.double)
    gap = (torch.tensor(rel["frequency"]) - torch.tensor(rel["confidence"])).abs()
    ece = float((count / count.sum().clamp_min(1) * gap).sum())
    return {"ece": ece, "reliability": {"kind": kind, **rel}}


def reliability_bins(conf: torch.Tensor, hit: torch.Tensor, bins: int) -> dict[str, list]:
    """Per equal-width bin of confidence: mean confidence, observed frequency, sample count.

    A value on an edge goes to the upper bin, and a confidence of exactly 1.0 to the last bin
    (as scikit-learn's `calibration_curve`)."""
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
