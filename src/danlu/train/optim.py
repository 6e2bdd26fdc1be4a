"""Optimizers by name (torch.optim), each reading only the recipe fields it uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from danlu.registry import Registry
from danlu.train.config import OptimizerConfig

__all__ = ["build_optimizer", "optimizers", "param_groups"]

optimizers: Registry = Registry("optimizer", "train.optimizer.name")


def _eps(c: OptimizerConfig, default: float) -> dict[str, float]:
    return {"eps": c.eps if c.eps is not None else default}


@optimizers.register("sgd")
def _sgd(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay)


@optimizers.register("momentum")
def _momentum(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)


@optimizers.register("nesterov")
def _nesterov(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    # Nesterov needs a non-zero momentum (torch raises otherwise); the recipe default is 0.9.
    return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=True,
                           weight_decay=c.weight_decay)


@optimizers.register("adagrad")
def _adagrad(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=c.lr, lr_decay=c.lr_decay, weight_decay=c.weight_decay,
                               **_eps(c, 1e-10))


@optimizers.register("adam")
def _adam(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay,
                            amsgrad=c.amsgrad, **_eps(c, 1e-8))


@optimizers.register("adamw")
def _adamw(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay,
                             amsgrad=c.amsgrad, **_eps(c, 1e-8))


@optimizers.register("rmsprop")
def _rmsprop(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    # Tieleman & Hinton 2012; no momentum, as torch's default.
    return torch.optim.RMSprop(params, lr=c.lr, alpha=c.alpha, weight_decay=c.weight_decay,
                               **_eps(c, 1e-8))


def param_groups(model: nn.Module, cfg: OptimizerConfig) -> list[dict[str, Any]]:
    """Parameters split into decayed and not: biases and norm weights (ndim < 2) skip decay.

    As nanoGPT's configure_optimizers: every 2D+ tensor (Linear, Conv weights) is decayed,
    every 1D one (biases, BatchNorm/LayerNorm scales and shifts) is not, unless the recipe
    says `decay_bias_and_norm: true` (the default for every optimizer but adamw).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay_all = cfg.decay_bias_and_norm if cfg.decay_bias_and_norm is not None \
        else cfg.name != "adamw"
    if decay_all or cfg.weight_decay == 0:
        return [{"params": params}]
    return [{"params": [p for p in params if p.dim() >= 2]},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def build_optimizer(params: Iterable | nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The torch optimizer named by cfg.name with the recipe's parameters.

    Given a module, its parameters are grouped by `param_groups` (decay exclusion)."""
    if isinstance(params, nn.Module):
        params = param_groups(params, cfg)
    return optimizers[cfg.name](params, cfg)
