"""fit(): the training loop on one screen. Features enter as one-line helper calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from danlu.evaluate.metrics import classification_metrics
from danlu.train.config import TrainConfig
from danlu.train.optim import build_optimizer

__all__ = ["FitResult", "fit", "predict_proba"]


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_value: float
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Class probabilities for x (eval mode, no grad), in batches."""
    model.eval()
    with torch.inference_mode():
        return torch.cat([torch.softmax(model(x[i:i + batch_size]), dim=1)
                          for i in range(0, len(x), batch_size)])


def _improved(value: float, best: float | None, maximize: bool) -> bool:
    return best is None or (value > best if maximize else value < best)


def fit(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], labels: list[str], cfg: TrainConfig, seed: int,
        on_epoch: Callable[[dict[str, Any]], None] = lambda row: None,
        augment: Callable[..., tuple[torch.Tensor, torch.Tensor]] = lambda x, y: (x, y)) -> FitResult:
    """Train on (x, y) tensors; keep the weights of the best validation epoch."""
    metric = cfg.early_stopping.metric.removeprefix("val.")
    maximize = metric != "loss"
    optimizer = build_optimizer(model.parameters(), cfg.optimizer)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)  # the batch order depends on the seed alone
    x, y = train
    best: float | None = None
    result = FitResult(best_state={}, best_epoch=0, best_value=float("nan"))
    waited = 0
    for epoch in range(1, cfg.epochs + 1):
        t0, model_loss, seen = time.perf_counter(), 0.0, 0
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(cfg.batch_size):
            xb, yb = augment(x[idx], y[idx])  # training batches only; mixup gives soft targets
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model_loss += loss.item() * len(idx)
            seen += len(idx)
        scores = classification_metrics(predict_proba(model, val[0]), val[1], labels)
        row = {"epoch": epoch, "train_loss": model_loss / seen, "val_loss": scores["loss"],
               **{f"val_{k}": scores[k] for k in ("accuracy", "f1_macro")},
               "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        result.history.append(row)
        on_epoch(row)
        if _improved(scores[metric], best, maximize):
            best, waited = scores[metric], 0
            result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_epoch, result.best_value = epoch, best
        else:
            waited += 1
        if cfg.early_stopping.patience and waited >= cfg.early_stopping.patience:
            result.stopped_early = True
            break
    model.load_state_dict(result.best_state)
    return result
