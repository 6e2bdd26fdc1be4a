"""Steps for any rows: Gaussian noise (normalized units) and mixup (soft targets).

Both act on the continuous columns of the network input only (`Feature.continuous`): a
category's one-hot columns or index stay a value some row has (mixup takes them from the row
with the larger weight)."""

from __future__ import annotations

import torch

__all__ = ["mixup", "noise"]


def noise(p, mask: torch.Tensor | None = None):
    """x + N(0, std^2) on the rows picked with probability p; std is in normalized units; only
    the columns where `mask` is 1 (default all)."""

    def op(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pick = (torch.rand(len(x), 1, device=x.device) < p.p).to(x.dtype)
        if mask is not None:
            pick = pick * mask.to(x.device, x.dtype)
        return x + pick * torch.randn_like(x) * p.std, y

    return op


def mixup(p, num_classes: int, mask: torch.Tensor | None = None):
    """Zhang et al. 2018: with probability p a batch becomes lam*x + (1-lam)*x[perm], lam ~ Beta.

    Targets always come back as probabilities [N, C], so the loss sees one form per run.
    """
    beta = torch.distributions.Beta(torch.tensor(p.alpha), torch.tensor(p.alpha))

    def op(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        soft = y if y.dtype.is_floating_point else \
            torch.nn.functional.one_hot(y, num_classes).to(x.dtype)
        if torch.rand(()) >= p.p:
            return x, soft
        lam = beta.sample().to(x.dtype)
        perm = torch.randperm(len(x), device=x.device)
        mixed = lam * x + (1 - lam) * x[perm]
        if mask is not None:  # codes: the dominant row's as they are
            m = mask.to(x.device, x.dtype)
            mixed = m * mixed + (1 - m) * (x if lam >= 0.5 else x[perm])
        return mixed, lam * soft + (1 - lam) * soft[perm]

    return op
