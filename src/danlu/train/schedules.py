"""Learning-rate schedules by name (torch.optim.lr_scheduler), stepped per update or per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch.optim import lr_scheduler

from danlu.registry import Registry
from danlu.train.config import ScheduleConfig

__all__ = ["Schedule", "build_schedule", "schedules", "steps_per_epoch"]


class Schedule:
    """A torch scheduler plus when it steps: after each optimizer update, each epoch, or each
    epoch with the validation metric (reduce-on-plateau)."""

    def __init__(self, scheduler: Any, every: Literal["update", "epoch", "metric"]):
        self.scheduler, self.every = scheduler, every

    def after_update(self) -> None:
        if self.every == "update":
            self.scheduler.step()

    def after_epoch(self, value: float) -> None:
        if self.every == "epoch":
            self.scheduler.step()
        elif self.every == "metric":
            self.scheduler.step(value)

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


# A builder gets (optimizer, cfg, epochs, updates per epoch, maximize the metric?).
schedules: Registry[Callable[..., Schedule]] = Registry("schedule", "train.schedule.name")


@schedules.register("constant")
def _constant(opt: torch.optim.Optimizer, c: ScheduleConfig, epochs: int, per_epoch: int,
              maximize: bool) -> Schedule:
    return Schedule(lr_scheduler.LambdaLR(opt, lambda step: 1.0), "update")


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """lr factor at update `step`: linear from 1/warmup to 1, then half a cosine to min_ratio
    (Loshchilov & Hutter 2017, SGDR without restarts; Goyal et al. 2017 for the warmup)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@schedules.register("cosine")
def _cosine(opt: torch.optim.Optimizer, c: ScheduleConfig, epochs: int, per_epoch: int,
            maximize: bool) -> Schedule:
    warmup, total = round(c.warmup_epochs * per_epoch), epochs * per_epoch
    return Schedule(lr_scheduler.LambdaLR(
        opt, lambda step: warmup_cosine(step, warmup, total, c.min_lr_ratio)), "update")


def warmup_linear(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """lr factor at update `step`: linear warmup to 1, then linear decay to min_ratio
    (Devlin et al. 2019, the BERT fine-tuning schedule)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 1.0 - (1 - min_ratio) * progress


@schedules.register("linear")
def _linear(opt: torch.optim.Optimizer, c: ScheduleConfig, epochs: int, per_epoch: int,
            maximize: bool) -> Schedule:
    warmup, total = round(c.warmup_epochs * per_epoch), epochs * per_epoch
    return Schedule(lr_scheduler.LambdaLR(
        opt, lambda step: warmup_linear(step, warmup, total, c.min_lr_ratio)), "update")


@schedules.register("step")
def _step(opt: torch.optim.Optimizer, c: ScheduleConfig, epochs: int, per_epoch: int,
          maximize: bool) -> Schedule:
    return Schedule(lr_scheduler.StepLR(opt, step_size=c.step_epochs, gamma=c.gamma), "epoch")


@schedules.register("onecycle")
def _onecycle(opt: torch.optim.Optimizer, c: ScheduleConfig, epochs: int, per_epoch: int,
              maximize: bool) -> Schedule:
    # The recipe's lr is the peak. Momentum cycles inversely where the optimizer has one
    # (SGD momentum or Adam's beta1); AdaGrad and plain SGD have none to cycle.
    d = opt.defaults
    cycle = "betas" in d or d.get("momentum", 0) > 0
    return Schedule(lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=epochs * per_epoch,
        pct_start=c.pct_start, cycle_momentum=cycle), "update")


@schedules.register("plateau")
def _plateau(opt: torch.optim.Optimizer, c: ScheduleConfig, epochs: int, per_epoch: int,
             maximize: bool) -> Schedule:
    return Schedule(lr_scheduler.ReduceLROnPlateau(
        opt, mode="max" if maximize else "min", factor=c.factor, patience=c.patience), "metric")


def steps_per_epoch(rows: int, batch_size: int, accumulate: int) -> int:
    """Optimizer updates per epoch: one per `accumulate` batches, the last group may be short."""
    return math.ceil(math.ceil(rows / batch_size) / accumulate)


def build_schedule(opt: torch.optim.Optimizer, cfg: ScheduleConfig, epochs: int, per_epoch: int,
                   maximize: bool) -> Schedule:
    """The schedule named by cfg.name over `epochs` epochs of `per_epoch` optimizer updates."""
    return schedules[cfg.name](opt, cfg, epochs, per_epoch, maximize)
