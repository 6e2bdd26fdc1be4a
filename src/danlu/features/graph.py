"""The torch modules that feature types and heads put into the exported graph.

Imported only inside `Feature.module()` / `Head.module()`: the rest of danlu.features stays
torch-free, so the server can encode raw values without torch.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AsColumn", "AsIndex", "Classify", "Destandardize", "Embed", "HashedBag",
           "ImputeNormalize", "Lookup", "Normalize", "OneHot", "PackTokens", "StandardizedLoss"]


class Normalize(nn.Module):
    """(x - shift) / scale per column; buffers, so they export as graph constants."""

    def __init__(self, shift: list[float], scale: list[float]):
        super().__init__()
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).reshape(1, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class ImputeNormalize(nn.Module):
    """Numbers with missing cells (NaN) -> [normalized values, missing indicators]: NaN becomes
    the column's training median (IsNaN + Where in ONNX), then (x - shift) / scale, then one
    1.0/0.0 column per index in `indicate` (the columns that had missing values in training).

    With `bins` (per column, T+1 quantile edges), the normalized values are followed by each
    column's piecewise-linear encoding: for bin t, 0 below its lower edge, 1 above its upper
    edge, linear in between (Gorishniy et al. 2022, "PLE"); [B, k*T] more columns."""

    def __init__(self, median: list[float], shift: list[float], scale: list[float],
                 indicate: list[int], bins: list[list[float]] | None = None):
        super().__init__()
        self.register_buffer("median", torch.tensor(median, dtype=torch.float32).reshape(1, -1))
        self.normalize = Normalize(shift, scale)
        self.register_buffer("indicate", torch.tensor(indicate, dtype=torch.int64))
        self.indicators = len(indicate)
        self.binned = bool(bins)
        if bins:
            e = torch.tensor(bins, dtype=torch.float32)  # [k, T+1]
            self.register_buffer("low", e[:, :-1].unsqueeze(0))
            # a bin of zero width (a repeated quantile) is a step at its edge
            self.register_buffer("span", (e[:, 1:] - e[:, :-1]).clamp(min=1e-6).unsqueeze(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(x)
        filled = torch.where(missing, self.median, x)
        parts = [self.normalize(filled)]
        if self.binned:
            ple = ((filled.unsqueeze(-1) - self.low) / self.span).clamp(0.0, 1.0)
            parts.append(ple.reshape(x.shape[0], -1))
        if self.indicators:
            parts.append(torch.index_select(missing, 1, self.indicate).to(parts[0].dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class OneHot(nn.Module):
    """Category indices [B] -> one-hot float rows [B, size]."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(idx.long().reshape(-1), self.size).float()


class AsColumn(nn.Module):
    """Values [B] -> one float column [B, 1] (a binary feature's 0 / 0.5 / 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, 1).float()


class AsIndex(nn.Module):
    """Indices [B] or [B, L] -> float columns [B, 1] or [B, L] (exact below 2**24): the network's
    input carries them to the feature's learned embedding (`Lookup`, `HashedBag`)."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return idx.reshape(idx.shape[0], -1).float()


class Lookup(nn.Module):
    """A float index column [B, 1] -> its learned embedding [B, dim]."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(size, dim)

    def forward(self, col: torch.Tensor) -> torch.Tensor:
        return self.embedding(col.reshape(-1).long())


class HashedBag(nn.Module):
    """Bucket ids as floats [B, L] (0 = padding) -> the mean of their learned vectors [B, dim]
    (a text with no words: zeros)."""

    def __init__(self, buckets: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(buckets, dim, padding_idx=0)

    def forward(self, col: torch.Tensor) -> torch.Tensor:
        ids = col.long()
        mask = (ids > 0).to(self.embedding.weight.dtype).unsqueeze(-1)
        return (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class Embed(nn.Module):
    """The network input [B, sum of widths] -> each feature's learned part applied to its own
    columns (a large category's embedding), the other columns as they are, concatenated."""

    def __init__(self, parts: list[tuple[int, nn.Module | None]]):
        super().__init__()
        self.widths = [w for w, _ in parts]
        self.learned = nn.ModuleList([m if m is not None else nn.Identity() for _, m in parts])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(c) for m, c in zip(self.learned, torch.split(x, self.widths, dim=1),
                                                strict=True)], dim=1)


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

    def __init__(self, mean: float, std: float, log: bool = False):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.log = log  # the network learned log(1 + y): exp(.) - 1 (Exp, Sub in ONNX)

    def forward(self, out: torch.Tensor) -> tuple[torch.Tensor]:
        value = out.float().reshape(-1) * self.std + self.mean
        return (torch.expm1(value) if self.log else value,)


class StandardizedLoss(nn.Module):
    """MSE or Huber between the network's output [B, 1] and the standardized target [B]."""

    def __init__(self, kind: str, mean: float, std: float, delta: float = 1.0,
                 log: bool = False):
        super().__init__()
        self.mean, self.std, self.log = mean, std, log
        self.fn = nn.MSELoss() if kind == "mse" else nn.HuberLoss(delta=delta)

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = torch.log1p(y.float()) if self.log else y.float()
        return self.fn(out.float().reshape(-1), (y - self.mean) / self.std)
