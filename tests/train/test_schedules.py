"""Every schedule trains, follows its curve, and takes its recipe parameters."""

from __future__ import annotations

import pytest
import torch
from torch.optim import lr_scheduler

from danlu.train.loop import fit
from danlu.train.optim import build_optimizer
from danlu.train.schedules import build_schedule, schedules, steps_per_epoch, warmup_cosine
from tests.train.helpers import dataset, mlp, train_cfg


def test_every_recipe_schedule_is_registered():
    from typing import get_args

    from danlu.train.config import ScheduleName

    assert sorted(get_args(ScheduleName)) == schedules.names()


@pytest.mark.parametrize("name", schedules.names())
def test_schedule_lowers_the_loss_on_iris(name):
    x, y, head = dataset()
    cfg = train_cfg(epochs=15, batch_size=16, optimizer={"name": "adam", "lr": 0.02},
                    schedule={"name": name, "warmup_epochs": 2, "step_epochs": 5, "gamma": 0.5,
                              "patience": 1})
    result = fit(mlp(4, 3), (x, y), (x, y), head, cfg, seed=0)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.history[-1]["val_accuracy"] > 0.85


def _lrs(schedule_cfg: dict, epochs: int = 4, rows: int = 40, batch: int = 10, metric=None):
    """lr before each optimizer update, driving the schedule as fit() does."""
    cfg = train_cfg(epochs=epochs, batch_size=batch, optimizer={"name": "sgd", "lr": 0.1},
                    schedule=schedule_cfg)
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], cfg.optimizer)
    per_epoch = steps_per_epoch(rows, batch, 1)
    sched = build_schedule(opt, cfg.schedule, epochs, per_epoch, maximize=True)
    out = []
    for epoch in range(epochs):
        for _ in range(per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_update()
        sched.after_epoch(metric(epoch) if metric else 0.5)
    return out, sched


def test_constant_keeps_the_lr():
    lrs, _ = _lrs({"name": "constant"})
    assert lrs == [0.1] * 16


def test_cosine_warms_up_linearly_then_decays_to_the_floor():
    lrs, sched = _lrs({"name": "cosine", "warmup_epochs": 1, "min_lr_ratio": 0.1})
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # 4 warmup updates
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))  # then non-increasing
    assert lrs[-1] == pytest.approx(0.1 * warmup_cosine(15, 4, 16, 0.1))
    assert warmup_cosine(16, 4, 16, 0.1) == pytest.approx(0.1)  # ends at min_lr_ratio
    assert isinstance(sched.scheduler, lr_scheduler.LambdaLR)


def test_step_multiplies_by_gamma_every_step_epochs():
    lrs, sched = _lrs({"name": "step", "step_epochs": 2, "gamma": 0.5})
    assert lrs[::4] == pytest.approx([0.1, 0.1, 0.05, 0.05])
    assert (sched.scheduler.step_size, sched.scheduler.gamma) == (2, 0.5)


def test_onecycle_peaks_at_the_recipe_lr():
    lrs, sched = _lrs({"name": "onecycle", "pct_start": 0.25})
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert lrs[peak] == pytest.approx(0.1) and peak == round(0.25 * 16) - 1
    assert lrs[0] == pytest.approx(0.1 / 25) and lrs[-1] < 1e-4
    assert isinstance(sched.scheduler, lr_scheduler.OneCycleLR)
    assert sched.scheduler.total_steps == 16


def test_plateau_cuts_the_lr_when_the_metric_stalls():
    lrs, sched = _lrs({"name": "plateau", "factor": 0.2, "patience": 1}, epochs=5,
                      metric=lambda epoch: 0.9 if epoch == 0 else 0.5)
    per_epoch = lrs[::4]
    assert per_epoch[:3] == pytest.approx([0.1, 0.1, 0.1])
    assert per_epoch[3] == pytest.approx(0.02)  # 2 bad epochs > patience 1
    assert (sched.scheduler.factor, sched.scheduler.patience, sched.scheduler.mode) == (0.2, 1, "max")


def test_history_records_the_scheduled_lr():
    x, y, head = dataset()
    cfg = train_cfg(epochs=4, batch_size=50, optimizer={"name": "sgd", "lr": 0.1},
                    schedule={"name": "step", "step_epochs": 1, "gamma": 0.5})
    result = fit(mlp(4, 3), (x, y), (x, y), head, cfg, seed=0)
    # the lr the epoch trained with (the schedule steps after the row is written)
    assert [r["lr"] for r in result.history] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
