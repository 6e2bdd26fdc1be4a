"""Mixed precision: autocast to bf16/fp16 and, for fp16, a gradient scaler (GPU only)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from danlu.errors import RecipeError

__all__ = ["Precision"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """What `train.precision` means on a device: an autocast context, backward, and the update.

    bf16 has fp32's exponent range, so it needs no loss scaling; fp16 underflows small
    gradients, so its loss is scaled up and the gradients unscaled before clipping and the
    step (Micikevicius et al. 2018). Weights and optimizer state stay fp32 in every mode.
    """

    def __init__(self, name: str, device: torch.device):
        if name not in _DTYPES:
            raise RecipeError("train.precision", got=name, expected="one of fp32, bf16, fp16")
        if name == "fp16" and device.type != "cuda":
            raise RecipeError("train.precision", got=name,
                              expected=f"fp32 or bf16 on {device.type}",
                              hint="fp16 needs a CUDA GPU for its grad scaler; "
                                   "use train.precision=bf16 on CPU")
        self.name, self.device = name, device
        self.dtype = _DTYPES[name]
        self.scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def update(self, optimizer: torch.optim.Optimizer, model: nn.Module, clip_norm: float) -> None:
        """Clip (on unscaled gradients), step, and clear the gradients."""
        if self.scaler and clip_norm:
            self.scaler.unscale_(optimizer)
        clip_gradients(model, clip_norm)
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)


def clip_gradients(model: nn.Module, max_norm: float) -> None:
    """Scale all gradients so their global L2 norm is at most max_norm (0 = no clipping)."""
    if max_norm:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
