"""Gradient clipping, gradient accumulation and weight-decay exclusion, through fit()."""

from __future__ import annotations

import pytest
import torch

from danlu.recipe import load_recipe
from danlu.train.loop import fit
from danlu.train.optim import build_optimizer, param_groups
from tests.train.helpers import dataset, mlp, train_cfg


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_clip_norm_bounds_each_update():
    x, y, head = dataset()
    model = mlp(4, 3)
    before = _flat(model)
    cfg = train_cfg(epochs=1, batch_size=15, clip_norm=1e-3, optimizer={"name": "sgd", "lr": 1.0})
    fit(model, (x, y), (x, y), head, cfg, seed=0)
    # 10 plain-SGD updates of lr 1 on gradients of norm <= 1e-3 move the weights <= 1e-2.
    moved = (_flat(model) - before).norm().item()
    assert 0 < moved <= 10 * 1e-3 * 1.0001
    unclipped = mlp(4, 3)
    fit(unclipped, (x, y), (x, y), head, train_cfg(epochs=1, batch_size=15,
                                                     optimizer={"name": "sgd", "lr": 1.0}), seed=0)
    assert (_flat(unclipped) - before).norm().item() > 100 * moved


def test_accumulating_two_batches_of_8_equals_one_batch_of_16():
    x, y, head = dataset(rows=144)  # 144 = 9 x 16: every accumulation group is full
    a, b = mlp(4, 3), mlp(4, 3)
    fit(a, (x, y), (x, y), head, train_cfg(epochs=3, batch_size=16,
                                             optimizer={"name": "sgd", "lr": 0.2}), seed=0)
    result = fit(b, (x, y), (x, y), head, train_cfg(epochs=3, batch_size=8, accumulate=2,
                                                      optimizer={"name": "sgd", "lr": 0.2}), seed=0)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-5)
    assert len(result.history) == 3


def test_adamw_skips_decay_on_biases_and_norm_weights_by_default():
    from danlu.features import build_features
    from danlu.features.category import CategoryHead
    from danlu.models import models
    from danlu.models.cnn import CNNConfig

    (image,) = build_features([("pixels", "image", [f"p{i}" for i in range(64)],
                                {"shape": [1, 8, 8]})])
    net = models["cnn"].build(CNNConfig(channels=[4], hidden=8), [image],
                              CategoryHead(None, [str(k) for k in range(10)]))
    cfg = load_recipe({"train": {"optimizer": {"name": "adamw", "weight_decay": 0.1}}}).train
    opt = build_optimizer(net, cfg.optimizer)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert any(p is bn.weight for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(net.parameters()))


@pytest.mark.parametrize("name,flag,groups", [("adamw", None, 2), ("adamw", True, 1),
                                              ("adam", None, 1), ("adam", False, 2),
                                              ("sgd", False, 2)])
def test_decay_bias_and_norm_option(name, flag, groups):
    cfg = load_recipe({"train": {"optimizer": {"name": name, "weight_decay": 0.01,
                                               "decay_bias_and_norm": flag}}}).train.optimizer
    assert len(param_groups(mlp(4, 3), cfg)) == groups
    assert len(build_optimizer(mlp(4, 3), cfg).param_groups) == groups


def test_adamw_with_decay_exclusion_trains():
    x, y, head = dataset()
    cfg = train_cfg(epochs=15, batch_size=16, optimizer={"name": "adamw", "lr": 0.02,
                                                         "weight_decay": 0.05})
    result = fit(mlp(4, 3), (x, y), (x, y), head, cfg, seed=0)
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
