"""One short training loop shared by pruning (fine-tuning), QAT and distillation, on the network
input tensors of any family (danlu.train.inputs / Encoding: a table's vector, an image's pixels, a
text's packed tokens); the loop is visible."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from danlu.train.loop import val_scores
from danlu.train.schedules import warmup_cosine

__all__ = ["FinetuneResult", "finetune", "history", "val_metric"]

# loss(logits, batch indices into the training split, labels, the batch's inputs) -> scalar
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# augment(x, y, step=(epoch, batch)) -> (x, y), as danlu.data.augment's Augmenter
Augment = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass
class FinetuneResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    metric: str = ""  # the validation metric the best epoch was chosen on (the head's main)
    best_val: float = float("nan")
    steps: int = 0


def val_metric(net: nn.Module, head: Any, val: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The head's main metric (accuracy; rmse) of `net` on the validation rows."""
    return float(val_scores(net, head, val)[head.main_metric])


def finetune(net: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
             val: tuple[torch.Tensor, torch.Tensor], head: Any, *, epochs: int, lr: float,
             batch_size: int, seed: int, loss_fn: LossFn | None = None,
             on_step: Callable[[int], None] = lambda step: None, select_from_step: int = 0,
             augment: Augment | None = None, schedule: str = "constant") -> FinetuneResult:
    """Adam on (x, y); keep the epoch best on the head's main validation metric (accuracy;
    rmse) among those ending at/after select_from_step. loss_fn None: the head's loss.
    schedule "cosine": the learning rate falls from `lr` to 0 along a half cosine over every
    step (distillation's default); "constant": `lr` throughout (short fine-tuning).

    `on_step(step)` runs before each optimizer step (the pruning schedule hooks in there).
    """
    result = FinetuneResult()
    if epochs == 0:
        on_step(0)
        return result
    x, y = train
    if loss_fn is None:
        criterion = head.loss()

        def loss_fn(out: torch.Tensor, idx: torch.Tensor, yb: torch.Tensor,
                    xb: torch.Tensor) -> torch.Tensor:
            return criterion(out, yb)
    metric, sign = head.main_metric, -1.0 if head.lower_is_better(head.main_metric) else 1.0
    result.metric = metric
    gen = torch.Generator().manual_seed(seed)  # batch order depends on the seed alone
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    total_steps = epochs * math.ceil(len(x) / batch_size)
    best: dict[str, torch.Tensor] | None = None
    step = 0
    for epoch in range(1, epochs + 1):
        t0, total, seen = time.perf_counter(), 0.0, 0
        net.train()
        for b, idx in enumerate(torch.randperm(len(x), generator=gen).split(batch_size)):
            on_step(step)
            if schedule == "cosine":
                for g in optimizer.param_groups:  # the training stage's cosine, no warmup, to 0
                    g["lr"] = lr * warmup_cosine(step, 0, total_steps, 0.0)
            xb, yb = augment(x[idx], y[idx], step=(epoch, b)) if augment else (x[idx], y[idx])
            out = net(xb)
            if getattr(net, "members", 1) > 1:  # model.ensemble: fine-tuned as the one model it serves
                out = net.combine(out)
            loss = loss_fn(out, idx, yb, xb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            total += loss.item() * len(idx)
            seen += len(idx)
        score = val_metric(net, head, val)
        result.history.append({"epoch": epoch, "train_loss": total / seen, f"val_{metric}": score,
                               "lr": optimizer.param_groups[0]["lr"],
                               "seconds": time.perf_counter() - t0})
        if step >= select_from_step and (best is None or score * sign > result.best_val * sign):
            best = {k: v.detach().clone() for k, v in net.state_dict().items()}
            result.best_epoch, result.best_val = epoch, score
    result.steps = step
    if best is not None:
        net.load_state_dict(best)
    net.eval()
    return result


def history(r: FinetuneResult) -> dict[str, Any]:
    """What compression.json records of a fine-tuning run."""
    return {"epochs": len(r.history), "best_epoch": r.best_epoch, "steps": r.steps,
            f"best_val_{r.metric}": r.best_val, "history": r.history}
