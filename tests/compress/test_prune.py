"""Pruning on real digits: exact zeros (not a rescale), fine-tuning, physically smaller layers
rebuilt by the model family from its widths."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from danlu.compress.config import PruneConfig
from danlu.compress.prune import cubic_sparsity, prune_structured, prune_unstructured, sparsity_report
from danlu.train.loop import predict_outputs


def _accuracy(net: nn.Module, ctx) -> float:
    x, y = ctx.xy("test")
    return float((predict_outputs(net, ctx.head, x).argmax(1) == y).float().mean())


def test_cubic_schedule_ramps_from_zero_to_target_and_stays():
    s = [cubic_sparsity(t, 0.8, ramp_steps=100) for t in range(0, 150)]
    assert s[0] == 0.0 and s[100] == 0.8 and s[149] == 0.8
    assert all(a <= b for a, b in zip(s, s[1:], strict=False))
    # Zhu & Gupta's cubic ramp prunes fast early: half the events give 1 - 0.5^3 = 87.5% of it.
    assert abs(cubic_sparsity(50, 0.8, 100) - 0.8 * (1 - 0.5 ** 3)) < 1e-12
    # A ramp of fewer steps than pruning events (a small table, one epoch) still ends at target.
    assert [cubic_sparsity(t, 0.5, ramp_steps=1) for t in range(3)] == [0.0, 0.5, 0.5]


def test_global_magnitude_pruning_leaves_exact_zeros_not_a_rescale(teacher, ctx):
    net = copy.deepcopy(teacher.net)
    params = teacher.family.prunable(net)
    cfg = PruneConfig(sparsity=0.8, scope="global", schedule="gradual", finetune_epochs=3)
    result = prune_unstructured(net, params, cfg, ctx.xy("train"), ctx.xy("val"), ctx.head, seed=0)
    weights = [getattr(m, n) for m, n in params]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == round(0.8 * total)  # the requested fraction, exactly
    assert sparsity_report(net, params)["sparsity"] == zeros / total
    # "multiply every weight by (1 - rate)" leaves no zeros at all: not pruning.
    rescaled = [getattr(m, n) * 0.2 for m, n in teacher.family.prunable(teacher.net)]
    assert sum(int((w == 0).sum()) for w in rescaled) == 0
    assert not any(torch.allclose(w, r) for w, r in zip(weights, rescaled, strict=True))
    # Masks are permanent: plain parameters, no weight_orig/weight_mask left in the state.
    assert all(not k.endswith(("_orig", "_mask")) for k in net.state_dict())
    # Accuracy is that of the fine-tuned model, chosen at full sparsity, and it recovers.
    assert len(result.history) == 3 and result.best_epoch >= 1
    assert _accuracy(net, ctx) > 0.85


def test_layer_wise_pruning_gives_each_layer_the_fraction(teacher, ctx):
    net = copy.deepcopy(teacher.net)
    params = teacher.family.prunable(net)
    prune_unstructured(net, params, PruneConfig(sparsity=0.5, scope="layer", schedule="oneshot",
                                                finetune_epochs=1),
                       ctx.xy("train"), ctx.xy("val"), ctx.head, seed=0)
    for name, layer in sparsity_report(net, params)["layers"].items():
        assert layer["zeros"] == round(0.5 * layer["weights"]), name


def test_structured_pruning_shrinks_layers_and_the_family_reloads_it(teacher, ctx, tmp_path):
    from danlu.models.load import load_model, save_model

    before = sum(p.numel() for p in teacher.net.parameters())
    pruned, cfg, _ = prune_structured(teacher, PruneConfig(method="structured", ratio=0.5,
                                                           finetune_epochs=1),
                                      ctx.xy("train"), ctx.xy("val"), seed=0)
    assert cfg.channels == [16, 32] and cfg.hidden == 64  # digits recipe: [32, 64], hidden 128
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert [c.weight.shape[0] for c in convs] == [16, 32]
    assert sum(p.numel() for p in pruned.parameters()) < before / 3
    assert teacher.net.state_dict()["1.weight"].shape[0] == 32  # the teacher is untouched
    # A model folder of the widths (a plain model config) + safetensors reloads it: no pickle.
    save_model(tmp_path / "m", cfg, pruned, teacher.features, teacher.head)
    again = load_model(tmp_path / "m")
    assert again.cfg == cfg
    x = ctx.xy("val")[0][:50]
    np.testing.assert_allclose(predict_outputs(again.net, ctx.head, x).numpy(),
                               predict_outputs(pruned, ctx.head, x).numpy(), atol=1e-6)
    assert _accuracy(pruned, ctx) > 0.85
