"""The `mlp` family's k-member network (`model.ensemble: k`, TabM-mini; danlu.models.mlp).

Imported only when such a network is built: danlu.models stays importable without torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MemberMLP", "member_rows"]

# The smallest class probability the members' mean is given (log of 0 is -inf).
TINY = float(torch.finfo(torch.float32).tiny)


class MemberMLP(nn.Module):
    """k MLPs sharing their hidden layers: member i scales the input by r_i (random +-1 signs at
    first, learned), runs the shared layers, then its own output layer. Training mode returns
    [B, k, out] (each member's output, `members` = k); eval mode returns `combine` of them."""

    def __init__(self, embed: nn.Module | None, width: int, hidden: list[int], out: int, k: int,
                 dropout: float, probabilities: bool):
        super().__init__()
        self.members, self.probabilities = k, probabilities
        self.embed = embed if embed is not None else nn.Identity()
        self.scale = nn.Parameter(torch.randint(0, 2, (k, width)).float() * 2 - 1)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        # the k output layers as one [k, width, out] tensor, initialised as nn.Linear's
        bound = 1 / math.sqrt(width)
        self.weight = nn.Parameter(torch.empty(k, width, out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.body(self.embed(x).unsqueeze(1) * self.scale)  # [B, k, hidden]
        # member i's output layer on its own rows: [k, B, hidden] @ [k, hidden, out]
        o = torch.bmm(z.transpose(0, 1), self.weight).transpose(0, 1) + self.bias  # [B, k, out]
        return o if self.training else self.combine(o)

    def combine(self, o: torch.Tensor) -> torch.Tensor:
        """Members' outputs [B, k, out] as one [B, out]: the log of their mean class
        probabilities (softmax of it is that mean), or the mean of their values."""
        if self.probabilities:
            # Softmax, ReduceMean, Log in ONNX (ORT's symbolic shape inference, which int8
            # quantization runs first, has no rule for ReduceLogSumExp)
            return torch.softmax(o, dim=-1).mean(dim=1).clamp_min(TINY).log()
        return o.mean(dim=1)


def member_rows(out: torch.Tensor, y: torch.Tensor, members: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A k-member network's training output [B, k, size] as B*k rows, each with its row's target
    (hard labels, soft mixup targets or values): the loss over them is the mean of the members'
    own losses. Anything else passes as it is."""
    if members <= 1 or out.dim() != 3:
        return out, y
    b, k = out.shape[:2]
    return out.reshape(b * k, -1), y.repeat_interleave(k, dim=0)
