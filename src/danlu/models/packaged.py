"""The deployable module: raw rows in, (probabilities, label) out, normalization inside."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Packaged"]


class Packaged(nn.Module):
    """(x - shift) / scale -> net -> softmax, argmax. This is what ONNX export traces."""

    def __init__(self, net: nn.Module, shift: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.net = net
        # Buffers, not parameters: saved and exported as graph constants, never trained.
        self.register_buffer("shift", shift.float().reshape(1, -1))
        self.register_buffer("scale", scale.float().reshape(1, -1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.softmax(self.net((x - self.shift) / self.scale), dim=1)
        return probs, probs.argmax(dim=1)
