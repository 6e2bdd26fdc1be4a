"""Unstructured magnitude pruning via torch.nn.utils.prune, gradual (Zhu & Gupta 2017) or one-shot.

The masks are made permanent at the end (prune.remove): the saved weights hold exact zeros.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from danlu.compress.config import PruneConfig
from danlu.compress.finetune import FinetuneResult, finetune

__all__ = ["Params", "cubic_sparsity", "prune_unstructured", "sparsity_report"]

# (module, parameter name) pairs pruning touches: the model family's `prunable(net)`.
Params = list[tuple[nn.Module, str]]

# Share of the fine-tuning steps over which sparsity ramps up; the rest recovers at full sparsity.
RAMP = 0.75
# Number of pruning events on the ramp (Zhu & Gupta prune every Δt steps; n events in all).
EVENTS = 10


def cubic_sparsity(step: int, target: float, ramp_steps: int, events: int = EVENTS) -> float:
    """Sparsity at `step` (0..1). Zhu & Gupta 2017, eq. 1: s_f·(1 − (1 − t/(nΔt))³), s_i = 0,
    evaluated at the last pruning event ≤ step (events every Δt = ramp_steps / n steps)."""
    if step >= ramp_steps:  # the ramp is over (with fewer steps than events too)
        return target
    dt = max(1, ramp_steps // events)
    k = min(events, (step // dt))
    return target * (1 - (1 - k / events) ** 3)


def _zeros(params: list[tuple[nn.Module, str]]) -> int:
    return sum(int((getattr(m, n) == 0).sum()) for m, n in params)


def _prune_to(params: list[tuple[nn.Module, str]], sparsity: float, scope: str) -> None:
    """Raise the masked fraction to `sparsity` (global: over all weights together; layer: each).

    torch's pruning amount counts units among those not yet pruned, so each call asks for the
    difference between the target count and the zeros already there."""
    if scope == "global":
        total = sum(getattr(m, n).numel() for m, n in params)
        extra = round(sparsity * total) - _zeros(params)
        if extra > 0:
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=extra)
        return
    for m, n in params:
        extra = round(sparsity * getattr(m, n).numel()) - _zeros([(m, n)])
        if extra > 0:
            prune.l1_unstructured(m, n, amount=extra)


def prune_unstructured(net: nn.Module, params: Params, cfg: PruneConfig,
                       train: tuple[torch.Tensor, torch.Tensor],
                       val: tuple[torch.Tensor, torch.Tensor], head: Any,
                       seed: int) -> FinetuneResult:
    """Prune `params` of `net` in place to cfg.sparsity while fine-tuning; masks made permanent
    at the end."""
    steps_per_epoch = math.ceil(len(train[0]) / cfg.batch_size)
    total = cfg.finetune_epochs * steps_per_epoch
    ramp = int(RAMP * total) if cfg.schedule == "gradual" else 0
    state = {"applied": -1.0}

    def on_step(step: int) -> None:
        s = cubic_sparsity(step, cfg.sparsity, ramp)
        if s > state["applied"]:
            _prune_to(params, s, cfg.scope)
            state["applied"] = s

    # Select the best epoch only among those that end at full sparsity.
    result = finetune(net, train, val, head, epochs=cfg.finetune_epochs, lr=cfg.lr,
                      batch_size=cfg.batch_size, seed=seed, on_step=on_step, select_from_step=ramp)
    on_step(total)  # whatever the step count, end at the target sparsity
    for m, n in params:
        if prune.is_pruned(m):
            prune.remove(m, n)  # weight = weight_orig * mask, as a plain parameter
    return result


def sparsity_report(net: nn.Module, params: Params) -> dict[str, Any]:
    """Exact zeros per pruned parameter (named by its module) and overall."""
    layers = {}
    zeros = total = 0
    names = {id(m): name for name, m in net.named_modules()}
    for m, n in params:
        w = getattr(m, n)
        z, t = int((w == 0).sum()), w.numel()
        layers[names[id(m)]] = {"zeros": z, "weights": t, "sparsity": z / t}
        zeros, total = zeros + z, total + t
    return {"sparsity": zeros / total if total else 0.0, "zeros": zeros, "weights": total,
            "layers": layers}
