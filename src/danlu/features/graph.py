"""The torch modules that feature types and heads put into the exported graph.

Imported only inside `Feature.module()` / `Head.module()`: the rest of danlu.features stays
torch-free, so the server can encode raw values without torch.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Classify", "Destandardize", "Normalize", "OneHot", "PackTokens", "StandardizedLoss"]


class Normalize(nn.Module):
    """(x - shift) / scale per column; buffers, so they export as graph constants."""

    def __init__(self, shift: list[float], scale: list[float]):
        super().__init__()
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class OneHot(nn.Module):
    """Category indices [B] -> one-hot float rows [B, size]."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(idx.long().reshape(-1), self.size).float()


class PackTokens(nn.Module):
    """(input_ids, attention_mask) [B, L] -> one int64 tensor [B, 2, L], the form training
    indexes (danlu.models.transformer cuts each batch to its longest text)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.stack([input_ids, attention_mask], dim=1)


class Classify(nn.Module):
    """Logits -> (probabilities fp32 [B, N], label int64 [B])."""

    def forward(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.softmax(logits.float(), dim=1)
        return probs, probs.argmax(dim=1)


class Destandardize(nn.Module):
    """Standardized regression output [B, 1] -> (value fp32 [B],) in the target's units."""

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, out: torch.Tensor) -> tuple[torch.Tensor]:
        return (out.float().reshape(-1) * self.std + self.mean,)


class StandardizedLoss(nn.Module):
    """MSE or Huber between the network's output [B, 1] and the standardized target [B]."""

    def __init__(self, kind: str, mean: float, std: float, delta: float = 1.0):
        super().__init__()
        self.mean, self.std = mean, std
        self.fn = nn.MSELoss() if kind == "mse" else nn.HuberLoss(delta=delta)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(out.float().reshape(-1), (y.float() - self.mean) / self.std)
