"""Knowledge distillation (Hinton et al. 2015): a student learns the teacher's soft labels (a
regression student: the teacher's standardized output, by MSE). The
student itself is the model family's (`Family.student`): a narrower network of the same family,
or a transformer keeping some of the teacher's layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.compress.config import DistillConfig
from danlu.compress.finetune import Augment, FinetuneResult, finetune

__all__ = ["distill", "distillation_gain", "distillation_loss", "teacher_logits"]


def distillation_loss(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, temperature: float,
                      alpha: float, head: Any = None) -> torch.Tensor:
    """α·soft(z_s, z_t) + (1 − α)·the head's loss on the labels/targets; the soft term is the
    head's (`Head.soft_loss`). A classification head (the default): α·T²·KL(softmax(z_t/T) ‖
    softmax(z_s/T)) + (1 − α)·CE(y, z_s), KL averaged over the batch (T² keeps the soft term's
    gradient scale independent of T, Hinton et al. 2015, sec. 2); a regression head: MSE
    between the standardized outputs, plus its own loss on the target."""
    if head is None:
        from danlu.features.base import heads

        head = heads["category"](None, [])
    return (alpha * head.soft_loss(z_s, z_t, temperature)
            + (1 - alpha) * head.loss()(z_s, y))


def teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The teacher's raw outputs for network inputs x (eval mode, in its inference batches)."""
    batch = getattr(teacher, "predict_batch", 1024)
    teacher.eval()
    with torch.inference_mode():
        return torch.cat([teacher(x[i:i + batch]).float() for i in range(0, len(x), batch)])


def distill(teacher: nn.Module, student: nn.Module, cfg: DistillConfig,
            train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
            head: Any, seed: int, use_teacher: bool = True,
            augment: Augment | None = None) -> FinetuneResult:
    """Train `student` (in place) on the teacher's logits; use_teacher=False trains it, same
    seed, epochs and augmented batches, on the labels alone (the comparison run).

    augment(x, y, step) (cfg.augment built by the caller): the teacher labels each augmented
    batch; without it the inputs are fixed and the teacher's logits are computed once."""
    teacher.eval()
    cached = teacher_logits(teacher, train[0]) if augment is None and use_teacher else None

    hard = head.loss()

    def loss(z_s: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not use_teacher:
            return hard(z_s, y)
        if cached is not None:
            z_t = cached[idx]
        else:
            with torch.no_grad():
                z_t = teacher(x)
        return distillation_loss(z_s, z_t, y, cfg.temperature, cfg.alpha, head)

    return finetune(student, train, val, head, epochs=cfg.epochs, lr=cfg.lr,
                    batch_size=cfg.batch_size, seed=seed, loss_fn=loss, augment=augment,
                    schedule=cfg.schedule)


def distillation_gain(head: Any, y: np.ndarray, distilled: np.ndarray,
                      undistilled: np.ndarray) -> dict[str, Any]:
    """The head's main metric of the distilled student minus the same student trained without
    the teacher (same rows; first outputs), signed so that a positive `<metric>_gain` is better
    (an RMSE that falls is a gain): paired bootstrap 95% interval (and McNemar's test for
    labels) from `Head.compare`."""
    metric = head.main_metric
    c = head.compare(y, distilled, undistilled)
    sign = -1.0 if head.lower_is_better(metric) else 1.0
    lo, hi = sorted(sign * v for v in c["ci"])
    out = {"metric": metric, f"{metric}_gain": sign * c[f"{metric}_diff"], "ci": [lo, hi],
           "bootstrap_p": c["bootstrap_p"],
           **{k: c[k] for k in ("mcnemar_p", "mcnemar") if k in c},
           f"distilled_{metric}": float(head.scores(distilled, y)[metric]),
           f"undistilled_{metric}": float(head.scores(undistilled, y)[metric]),
           # a gain is claimed only when the whole interval lies above zero
           "significant": lo > 0}
    return out
