"""fit(): the training loop on one screen. Features enter as one-line helper calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from danlu.models.members import member_rows
from danlu.train.checkpoint import Checkpoint, Checkpointer, CheckpointStore
from danlu.train.config import TrainConfig
from danlu.train.distributed import shard, wrap
from danlu.train.optim import build_optimizer
from danlu.train.precision import Precision
from danlu.train.schedules import build_schedule, steps_per_epoch
from danlu.train.state import LoopState, epoch_batches

__all__ = ["FitResult", "fit", "predict_outputs", "val_scores", "watched_metric"]


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_value: float
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from: str | None = None  # the checkpoint file training continued from


def predict_outputs(model: nn.Module, head: Any, x: torch.Tensor,
                    batch_size: int | None = None) -> torch.Tensor:
    """The head's first output (class probabilities) for network inputs x, in batches."""
    batch_size = batch_size or getattr(model, "predict_batch", 1024)
    decode = head.module()
    model.eval()
    with torch.inference_mode():
        return torch.cat([decode(model(x[i:i + batch_size]))[0].float()
                          for i in range(0, len(x), batch_size)])


def val_scores(model: nn.Module, head: Any, val: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """The head's metrics of `model` on validation tensors."""
    return head.scores(predict_outputs(model, head, val[0]).cpu().numpy(), val[1].cpu().numpy())


def watched_metric(cfg: TrainConfig, head: Any) -> str:
    """train.early_stopping.metric, else the head's default; one the head scores."""
    from danlu.errors import RecipeError

    metric = cfg.early_stopping.metric or head.default_metric
    if metric.removeprefix("val.") not in head.metric_names:
        raise RecipeError("train.early_stopping.metric", got=metric,
                          expected=f"a metric of the {head.type} head: "
                                   f"{', '.join('val.' + m for m in head.metric_names)}")
    return metric


def _improved(value: float, best: float | None, maximize: bool) -> bool:
    return best is None or (value > best if maximize else value < best)


def _update_due(batch: int, batches: int, accumulate: int) -> bool:
    """Step after every `accumulate` batches, and after the epoch's last (maybe short) group."""
    return batch % accumulate == 0 or batch == batches


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], head: Any, cfg: TrainConfig, seed: int,
        on_epoch: Callable[[dict[str, Any]], None] = lambda row: None,
        checkpoints: CheckpointStore | None = None, resume: Checkpoint | None = None,
        augment: Callable[..., tuple[torch.Tensor, torch.Tensor]] = lambda x, y, step: (x, y),
        lengths: torch.Tensor | None = None,
        ) -> FitResult:
    """Train on (x, y) tensors; keep the weights of the best validation epoch.

    With `checkpoints`, state is saved as the recipe's train.checkpoint says; with `resume`,
    training continues exactly where that checkpoint left off. With `lengths` (tokens per
    training row), batches hold rows of similar length (text: less padding)."""
    metric = watched_metric(cfg, head).removeprefix("val.")
    maximize = not head.lower_is_better(metric)
    x, y = train
    optimizer = build_optimizer(model, cfg.optimizer)
    schedule = build_schedule(optimizer, cfg.schedule, cfg.epochs,
                              steps_per_epoch(len(x), cfg.batch_size, cfg.accumulate), maximize)
    precision = Precision(cfg.precision, next(model.parameters()).device)
    loss_fn = head.loss()
    members = getattr(model, "members", 1)  # model.ensemble: each member fits its own loss
    ckpt = Checkpointer(checkpoints, model, optimizer, schedule, precision)
    net = wrap(model)  # DistributedDataParallel under torchrun; the model itself otherwise
    # the batch order depends on the seed alone
    state = ckpt.restore(resume, LoopState(gen=torch.Generator().manual_seed(seed)))
    while state.epoch < cfg.epochs and not state.stopped_early:
        t0 = time.perf_counter()
        model.train()
        batches = epoch_batches(state, len(x), cfg.batch_size, lengths)
        for batch in batches[state.batch:]:
            idx, share = shard(batch)  # this rank's rows of the global batch (all of them alone)
            # training batches only; seeded by position (exact resume); mixup gives soft targets
            xb, yb = augment(x[idx], y[idx], step=(state.epoch, state.batch))
            with precision.autocast():
                loss = loss_fn(*member_rows(net(xb), yb, members))
            precision.backward(loss * share / cfg.accumulate)
            state.add_batch(loss, len(idx))
            if _update_due(state.batch, len(batches), cfg.accumulate):
                precision.update(optimizer, model, cfg.clip_norm)
                schedule.after_update()
                state.update += 1
                ckpt.after_update(state)
        scores = val_scores(model, head, val)
        seconds, lr = time.perf_counter() - t0, optimizer.param_groups[0]["lr"]
        row = {"epoch": state.epoch + 1, **state.end_epoch(),
               **{f"val_{k}": scores[k] for k in head.epoch_metrics},
               "lr": lr, "seconds": seconds}
        state.history.append(row)
        on_epoch(row)
        schedule.after_epoch(scores[metric])
        if _improved(scores[metric], state.best, maximize):
            state.best, state.waited, state.best_epoch = scores[metric], 0, state.epoch
            state.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            state.waited += 1
        state.stopped_early = bool(cfg.early_stopping.patience
                                   and state.waited >= cfg.early_stopping.patience)
        ckpt.after_epoch(state)
    model.load_state_dict(state.best_state)
    return FitResult(state.best_state, state.best_epoch, float(state.best), state.history,
                     state.stopped_early, resumed_from=resume and resume.path.name)
