"""Every optimizer trains (the loss falls) and the recipe's parameters reach torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from danlu.recipe import load_recipe
from danlu.train.loop import fit
from danlu.train.optim import build_optimizer, optimizers
from tests.train.helpers import dataset, mlp

LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.05, "adam": 0.01,
      "adamw": 0.01, "rmsprop": 0.005}


def test_every_recipe_optimizer_is_registered():
    from typing import get_args

    from danlu.train.config import OptimizerName

    assert sorted(get_args(OptimizerName)) == optimizers.names()


@pytest.mark.parametrize("name", optimizers.names())
def test_optimizer_lowers_the_loss_on_iris(name):
    x, y, head = dataset("iris")
    cfg = load_recipe({"train": {"epochs": 15, "batch_size": 16, "early_stopping": {"patience": 0},
                                 "optimizer": {"name": name, "lr": LR[name]}}}).train
    model = mlp(4, 3, hidden=16)
    result = fit(model, (x, y), (x, y), head, cfg, seed=0)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.history[-1]["val_accuracy"] > 0.85


@pytest.mark.parametrize("name,cls,expect", [
    ("sgd", torch.optim.SGD, {"lr": 0.3, "momentum": 0, "nesterov": False, "weight_decay": 0.01}),
    ("momentum", torch.optim.SGD, {"lr": 0.3, "momentum": 0.8, "nesterov": False}),
    ("nesterov", torch.optim.SGD, {"lr": 0.3, "momentum": 0.8, "nesterov": True}),
    ("adagrad", torch.optim.Adagrad, {"lr": 0.3, "weight_decay": 0.01, "lr_decay": 0.001,
                                      "eps": 1e-6}),
    ("adam", torch.optim.Adam, {"lr": 0.3, "betas": (0.8, 0.95), "weight_decay": 0.01,
                                "amsgrad": True, "eps": 1e-6}),
    ("adamw", torch.optim.AdamW, {"lr": 0.3, "betas": (0.8, 0.95), "weight_decay": 0.01,
                                  "amsgrad": True, "eps": 1e-6}),
    ("rmsprop", torch.optim.RMSprop, {"lr": 0.3, "weight_decay": 0.01, "alpha": 0.9, "eps": 1e-6}),
])
def test_recipe_parameters_reach_torch(name, cls, expect):
    cfg = load_recipe({"train": {"optimizer": {"name": name, "lr": 0.3, "momentum": 0.8,
                                               "betas": [0.8, 0.95], "weight_decay": 0.01,
                                               "amsgrad": True, "eps": 1e-6, "alpha": 0.9,
                                               "lr_decay": 0.001}}})
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg.train.optimizer)
    assert type(opt) is cls
    group = opt.param_groups[0]
    for key, value in expect.items():
        assert group[key] == (tuple(value) if isinstance(value, tuple) else value), key


@pytest.mark.parametrize("name,eps", [("adagrad", 1e-10), ("adam", 1e-8), ("rmsprop", 1e-8)])
def test_unset_eps_keeps_torchs_default(name, eps):
    cfg = load_recipe({"train": {"optimizer": {"name": name}}}).train.optimizer
    assert build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg).param_groups[0]["eps"] == eps


def test_early_stopping_keeps_the_best_epoch():
    x, y, head = dataset("iris")
    cfg = load_recipe({"train": {"epochs": 200, "early_stopping": {"metric": "val.loss",
                                                                  "patience": 3},
                                 "optimizer": {"name": "adam", "lr": 0.05}}}).train
    model = mlp(4, 3, hidden=8)
    result = fit(model, (x, y), (x[:30], y[:30]), head, cfg, seed=0)
    assert result.stopped_early and len(result.history) < 200
    best = min(r["val_loss"] for r in result.history)
    assert result.best_value == best
    assert result.history[result.best_epoch - 1]["val_loss"] == best
    assert np.isclose(torch.nn.functional.cross_entropy(model.eval()(x[:30]), y[:30]).item(), best,
                      rtol=1e-4)
