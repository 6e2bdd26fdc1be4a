"""Quantization-aware training: fine-tune with int8 fake quantization, so that the weights learn
to live on the int8 grid ONNX Runtime's static QDQ graph will use (Jacob et al. 2018).

Simulated as ORT quantizes (quantize/onnx_quant.py): weights per output channel, symmetric int8
[-127, 127]; the inputs of every Conv/Linear per tensor, asymmetric int8, their range an
exponential moving average of batch min/max. BatchNorm is folded into the preceding Conv first
(ORT folds it before quantizing, so the folded weights are the ones to train on the grid); the
BatchNorm module stays as an identity so the model config and safetensors keys do not change.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from danlu.compress.finetune import FinetuneResult, finetune

__all__ = ["FakeQuantized", "qat_finetune"]


class FakeQuantized(nn.Module):
    """A Conv2d or Linear whose input and weight pass through int8 fake quantization."""

    def __init__(self, layer: nn.Module, momentum: float = 0.05):
        super().__init__()
        self.layer, self.momentum = layer, momentum
        self.register_buffer("lo", torch.tensor(float("nan")))
        self.register_buffer("hi", torch.tensor(float("nan")))

    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().min(), x.detach().max()
        if torch.isnan(self.lo):
            self.lo.copy_(lo), self.hi.copy_(hi)
        else:
            self.lo.lerp_(lo, self.momentum), self.hi.lerp_(hi, self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.isnan(self.lo):
            self._observe(x)
        lo, hi = min(float(self.lo), 0.0), max(float(self.hi), 0.0)  # zero must be exact
        scale = max(hi - lo, 1e-8) / 255
        zero = int(round(-128 - lo / scale))
        xq = torch.fake_quantize_per_tensor_affine(x, scale, zero, -128, 127)
        w = self.layer.weight
        w_scale = (w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-8) / 127).float()
        wq = torch.fake_quantize_per_channel_affine(
            w, w_scale, torch.zeros(len(w_scale), dtype=torch.int32), 0, -127, 127)
        if isinstance(self.layer, nn.Conv2d):
            return self.layer._conv_forward(xq, wq, self.layer.bias)
        return nn.functional.linear(xq, wq, self.layer.bias)


def _fold_batchnorm(net: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Fold each BatchNorm2d into the Conv2d before it (in a Sequential); the BatchNorm is
    replaced by Identity during training. Returns (parent, name, bn) to restore afterwards."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    folded = []
    for parent in list(net.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                w, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                               bn.eps, bn.weight, bn.bias)
                conv.weight, conv.bias = w, bias
                parent._modules[b] = nn.Identity()
                folded.append((parent, b, bn))
    return folded


def _identity_batchnorm(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    """The BatchNorm back, set to pass its input through unchanged (eval mode)."""
    with torch.no_grad():
        bn.weight.fill_(1), bn.bias.zero_(), bn.running_mean.zero_()
        bn.running_var.fill_(1 - bn.eps)
    return bn.eval()


def _swap(net: nn.Module, wrap: bool) -> None:
    for parent in list(net.modules()):
        for name, child in list(parent._modules.items()):
            if wrap and isinstance(child, (nn.Conv2d, nn.Linear)):
                parent._modules[name] = FakeQuantized(child)
            elif not wrap and isinstance(child, FakeQuantized):
                parent._modules[name] = child.layer


def qat_finetune(net: nn.Module, cfg: Any, train: tuple[torch.Tensor, torch.Tensor],
                 val: tuple[torch.Tensor, torch.Tensor], head: Any, seed: int) -> FinetuneResult:
    """Fine-tune `net` in place under int8 fake quantization (cfg: epochs, lr, batch_size); the
    epoch kept is the best by the head's validation metric *of the fake-quantized model*. Leaves a plain
    fp32 module (same config, same state-dict keys) whose weights suit int8."""
    folded = _fold_batchnorm(net)
    _swap(net, wrap=True)
    try:
        result = finetune(net, train, val, head, epochs=cfg.epochs, lr=cfg.lr,
                          batch_size=cfg.batch_size, seed=seed)
    finally:
        _swap(net, wrap=False)
        for parent, name, bn in folded:
            parent._modules[name] = _identity_batchnorm(bn)
    return result
