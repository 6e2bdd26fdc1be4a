"""Knowledge distillation (Hinton et al. 2015): a small student learns the teacher's soft labels."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from danlu.compress.config import DistillConfig
from danlu.compress.finetune import Augment, FinetuneResult, finetune
from danlu.models import InputSpec, build_model

__all__ = ["distill", "distillation_loss", "student_config"]


def distillation_loss(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, temperature: float,
                      alpha: float) -> torch.Tensor:
    """α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(y, z_s), KL averaged over the batch.

    T² keeps the soft term's gradient scale independent of T (Hinton et al. 2015, sec. 2)."""
    T = temperature
    kl = F.kl_div(F.log_softmax(z_s / T, dim=1), F.log_softmax(z_t / T, dim=1), log_target=True,
                  reduction="batchmean")
    return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(z_s, y)


def student_config(cfg: DistillConfig, teacher_cfg: Any) -> Any:
    """cfg.student, or the teacher's architecture with every width times cfg.width (at least 1)."""
    if cfg.student is not None:
        return cfg.student

    def w(n: int) -> int:
        return max(1, round(n * cfg.width))

    if teacher_cfg.arch == "cnn":
        return teacher_cfg.model_copy(update={"channels": [w(c) for c in teacher_cfg.channels],
                                              "hidden": w(teacher_cfg.hidden)})
    return teacher_cfg.model_copy(update={"hidden": [w(h) for h in teacher_cfg.hidden]})


def distill(teacher: nn.Module, student_cfg: Any, spec: InputSpec, num_classes: int,
            cfg: DistillConfig, train: tuple[torch.Tensor, torch.Tensor],
            val: tuple[torch.Tensor, torch.Tensor], seed: int, use_teacher: bool = True,
            augment: Augment | None = None) -> tuple[nn.Module, FinetuneResult]:
    """Train a fresh student (seeded) on the teacher's logits; use_teacher=False trains the same
    student, same seed, epochs and augmented batches, on the labels alone (the comparison run).

    augment(x, y, step) (cfg.augment built by the caller): the teacher labels each augmented
    batch; without it the inputs are fixed and the teacher's logits are computed once."""
    torch.manual_seed(seed)
    student = build_model(student_cfg, spec, num_classes)
    teacher.eval()
    cached = None
    if augment is None:
        with torch.inference_mode():
            cached = torch.cat([teacher(train[0][i:i + 1024]) for i in range(0, len(train[0]), 1024)])

    def loss(z_s: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not use_teacher:
            return F.cross_entropy(z_s, y)
        if cached is not None:
            z_t = cached[idx]
        else:
            with torch.no_grad():
                z_t = teacher(x)
        return distillation_loss(z_s, z_t, y, cfg.temperature, cfg.alpha)

    result = finetune(student, train, val, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                      seed=seed, loss_fn=loss, augment=augment)
    return student.eval(), result
