"""Pruning on real digits: exact zeros (not a rescale), fine-tuning, physically smaller layers."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from danlu.compress.config import PruneConfig
from danlu.compress.prune import cubic_sparsity, prune_structured, prune_unstructured, sparsity_report
from danlu.compress.prune.unstructured import prunable
from danlu.models import InputSpec, build_model
from danlu.runs import Run
from danlu.train.checkpoint import load_model
from danlu.train.loop import predict_proba


def _accuracy(net: nn.Module, ctx) -> float:
    x = torch.from_numpy(ctx.splits.normalizer.transform(ctx.splits.x["test"]))
    return float((predict_proba(net, x).argmax(1).numpy() == ctx.splits.y["test"]).mean())


def test_cubic_schedule_ramps_from_zero_to_target_and_stays():
    s = [cubic_sparsity(t, 0.8, ramp_steps=100) for t in range(0, 150)]
    assert s[0] == 0.0 and s[100] == 0.8 and s[149] == 0.8
    assert all(a <= b for a, b in zip(s, s[1:], strict=False))
    # Zhu & Gupta's cubic ramp prunes fast early: half the events give 1 - 0.5^3 = 87.5% of it.
    assert abs(cubic_sparsity(50, 0.8, 100) - 0.8 * (1 - 0.5 ** 3)) < 1e-12


def test_global_magnitude_pruning_leaves_exact_zeros_not_a_rescale(small_run, ctx):
    orig = load_model(Run.open(small_run.run_dir))
    net = copy.deepcopy(orig)
    cfg = PruneConfig(sparsity=0.8, scope="global", schedule="gradual", finetune_epochs=3)
    result = prune_unstructured(net, cfg, ctx.train, ctx.val, seed=0)
    weights = [getattr(m, n) for m, n in prunable(net)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == round(0.8 * total)  # the requested fraction, exactly
    assert sparsity_report(net)["sparsity"] == zeros / total
    # The seed's "multiply every weight by (1 - rate)" leaves no zeros at all: not pruning.
    rescaled = [getattr(m, n) * 0.2 for m, n in prunable(orig)]
    assert sum(int((w == 0).sum()) for w in rescaled) == 0
    assert not any(torch.allclose(w, r) for w, r in zip(weights, rescaled, strict=True))
    # Masks are permanent: plain parameters, no weight_orig/weight_mask left in the state.
    assert all(not k.endswith(("_orig", "_mask")) for k in net.state_dict())
    # Accuracy is that of the fine-tuned model, chosen at full sparsity, and it recovers.
    assert len(result.history) == 3 and result.best_epoch >= 1
    assert _accuracy(net, ctx) > 0.85


def test_layer_wise_pruning_gives_each_layer_the_fraction(small_run, ctx):
    net = load_model(Run.open(small_run.run_dir))
    prune_unstructured(net, PruneConfig(sparsity=0.5, scope="layer", schedule="oneshot",
                                        finetune_epochs=1), ctx.train, ctx.val, seed=0)
    for name, layer in sparsity_report(net)["layers"].items():
        assert layer["zeros"] == round(0.5 * layer["weights"]), name


def test_structured_pruning_shrinks_layers_and_reloads_from_config(small_run, ctx, tmp_path):
    from safetensors.torch import load_file, save_file

    run = Run.open(small_run.run_dir)
    net = load_model(run)
    before = sum(p.numel() for p in net.parameters())
    pruned, cfg, _ = prune_structured(net, run.recipe.model, ctx.spec, 10,
                                      PruneConfig(method="structured", ratio=0.5, finetune_epochs=1),
                                      ctx.train, ctx.val, seed=0)
    assert cfg.channels == [16, 32] and cfg.hidden == 64  # digits recipe: [32, 64], hidden 128
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert [c.weight.shape[0] for c in convs] == [16, 32]
    assert sum(p.numel() for p in pruned.parameters()) < before / 3
    # Reload from the widths (a plain model config) + safetensors: no pickle anywhere.
    save_file({k: v.contiguous() for k, v in pruned.state_dict().items()}, str(tmp_path / "w.st"))
    again = build_model(cfg, InputSpec(64, (1, 8, 8)), 10)
    again.load_state_dict(load_file(str(tmp_path / "w.st")))
    x = ctx.val[0][:50]
    np.testing.assert_allclose(predict_proba(again, x).numpy(), predict_proba(pruned, x).numpy(),
                               atol=1e-6)
    assert _accuracy(pruned, ctx) > 0.85
