"""Optimizers by name (torch.optim), each reading only the recipe fields it uses."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from danlu.registry import Registry
from danlu.train.config import OptimizerConfig

__all__ = ["build_optimizer", "optimizers"]

optimizers: Registry = Registry("optimizer", "train.optimizer.name")


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
    return torch.optim.Adagrad(params, lr=c.lr, weight_decay=c.weight_decay)


@optimizers.register("adam")
def _adam(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)


@optimizers.register("adamw")
def _adamw(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)


@optimizers.register("rmsprop")
def _rmsprop(params: Iterable, c: OptimizerConfig) -> torch.optim.Optimizer:
    # torch's RMSprop defaults (alpha 0.99, no momentum), Tieleman & Hinton 2012.
    return torch.optim.RMSprop(params, lr=c.lr, weight_decay=c.weight_decay)


def build_optimizer(params: Iterable, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The torch optimizer named by cfg.name with the recipe's parameters."""
    return optimizers[cfg.name](params, cfg)
