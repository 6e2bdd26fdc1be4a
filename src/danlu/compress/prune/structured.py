"""Structured pruning with Torch-Pruning: whole channels/neurons go, so layers physically shrink.

The pruned network is described again as an ordinary model config (the new layer widths), so it
is rebuilt by the model registry and loaded from safetensors: no pickle, ever.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from danlu.compress.config import PruneConfig
from danlu.compress.finetune import FinetuneResult, finetune
from danlu.errors import RecipeError
from danlu.models import InputSpec, build_model

__all__ = ["prune_structured", "widths_config"]


def _linears(net: nn.Module) -> list[nn.Linear]:
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def widths_config(net: nn.Module, model_cfg: Any) -> Any:
    """The model config whose layer widths are those of `net` (CNN channels/hidden, MLP hidden)."""
    if model_cfg.arch == "cnn":
        convs = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
        return model_cfg.model_copy(update={"channels": convs, "hidden": _linears(net)[0].out_features})
    if model_cfg.arch == "mlp":
        return model_cfg.model_copy(update={"hidden": [m.out_features for m in _linears(net)[:-1]]})
    raise RecipeError("model.arch", got=model_cfg.arch,
                      expected="cnn or mlp for structured pruning (widths must map back to a config)")


def prune_structured(net: nn.Module, model_cfg: Any, spec: InputSpec, num_classes: int,
                     cfg: PruneConfig, train: tuple[torch.Tensor, torch.Tensor],
                     val: tuple[torch.Tensor, torch.Tensor], seed: int
                     ) -> tuple[nn.Module, Any, FinetuneResult]:
    """Remove cfg.ratio of each layer's channels (L2 magnitude groups), rebuild, fine-tune.

    Returns the rebuilt network, its model config (the new widths) and the fine-tuning history.
    """
    import torch_pruning as tp

    net = net.eval()
    example = torch.zeros(2, spec.features)
    classifier = _linears(net)[-1]  # the output layer keeps one unit per class
    pruner = tp.pruner.MetaPruner(net, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=cfg.ratio, ignored_layers=[classifier])
    pruner.step()
    new_cfg = widths_config(net, model_cfg)
    # Rebuild from the config and load the pruned weights: proves the config alone describes it.
    rebuilt = build_model(new_cfg, spec, num_classes)
    rebuilt.load_state_dict(net.state_dict())
    result = finetune(rebuilt, train, val, epochs=cfg.finetune_epochs, lr=cfg.lr,
                      batch_size=cfg.batch_size, seed=seed)
    return rebuilt.eval(), new_cfg, result
