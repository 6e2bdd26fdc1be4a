"""Knowledge distillation (Hinton et al. 2015): a student learns the teacher's soft labels. The
student itself is the model family's (`Family.student`): a narrower network of the same family,
or a transformer keeping some of the teacher's layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from danlu.compress.config import DistillConfig
from danlu.compress.finetune import Augment, FinetuneResult, finetune

__all__ = ["distill", "distillation_gain", "distillation_loss", "teacher_logits"]


def distillation_loss(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, temperature: float,
                      alpha: float) -> torch.Tensor:
    """α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(y, z_s), KL averaged over the batch.

    T² keeps the soft term's gradient scale independent of T (Hinton et al. 2015, sec. 2)."""
    T = temperature
    kl = F.kl_div(F.log_softmax(z_s / T, dim=1), F.log_softmax(z_t / T, dim=1), log_target=True,
                  reduction="batchmean")
    return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(z_s, y)


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

    def loss(z_s: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if not use_teacher:
            return F.cross_entropy(z_s, y)
        if cached is not None:
            z_t = cached[idx]
        else:
            with torch.no_grad():
                z_t = teacher(x)
        return distillation_loss(z_s, z_t, y, cfg.temperature, cfg.alpha)

    return finetune(student, train, val, head, epochs=cfg.epochs, lr=cfg.lr,
                    batch_size=cfg.batch_size, seed=seed, loss_fn=loss, augment=augment)


def distillation_gain(y: np.ndarray, distilled: np.ndarray, undistilled: np.ndarray) -> dict[str, Any]:
    """Test accuracy of the distilled student minus the same student trained without the teacher
    (same rows): paired bootstrap 95% interval and McNemar's test (danlu.evaluate.stats)."""
    from danlu.compress.gates import compare_to_baseline

    c = compare_to_baseline(y, distilled, undistilled)
    return {"accuracy_gain": c["accuracy_diff"], "ci": c["ci"], "bootstrap_p": c["bootstrap_p"],
            "mcnemar_p": c["mcnemar_p"], "mcnemar": c["mcnemar"],
            "distilled_accuracy": float((distilled == y).mean()),
            "undistilled_accuracy": float((undistilled == y).mean()),
            # a gain is claimed only when the whole interval lies above zero
            "significant": c["ci"][0] > 0}
