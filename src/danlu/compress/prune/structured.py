"""Structured pruning with Torch-Pruning: whole channels/neurons go, so layers physically shrink.

The pruned network is described again as an ordinary model config (the family's `widths` hook
reads the new layer widths), so it is rebuilt by its family and loaded from safetensors: no
pickle, ever.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from danlu.compress.config import PruneConfig
from danlu.compress.finetune import FinetuneResult, finetune

__all__ = ["prune_structured"]


def prune_structured(model: Any, cfg: PruneConfig, train: tuple[torch.Tensor, torch.Tensor],
                     val: tuple[torch.Tensor, torch.Tensor], seed: int
                     ) -> tuple[nn.Module, Any, FinetuneResult]:
    """Remove cfg.ratio of each layer's channels (L2 magnitude groups) of `model` (a loaded
    model: family, cfg, features, head, net), rebuild it from its new widths, fine-tune.

    Returns the rebuilt network, its model config (the new widths) and the fine-tuning history.
    The caller checked that the family takes structured pruning (`widths` is not None)."""
    import copy

    import torch_pruning as tp

    net = copy.deepcopy(model.net).eval()
    example = train[0][:2]  # the network's own input: a table's vector, an image's pixels
    classifier = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]  # one unit per class
    pruner = tp.pruner.MetaPruner(net, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=cfg.ratio, ignored_layers=[classifier])
    pruner.step()
    new_cfg = model.family.widths(net, model.cfg)
    # Rebuild from the config and load the pruned weights: proves the config alone describes it.
    rebuilt = model.family.build(new_cfg, model.features, model.head)
    rebuilt.load_state_dict(net.state_dict())
    result = finetune(rebuilt, train, val, model.head, epochs=cfg.finetune_epochs, lr=cfg.lr,
                      batch_size=cfg.batch_size, seed=seed)
    return rebuilt.eval(), new_cfg, result
