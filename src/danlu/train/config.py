"""Recipe section `train` (pydantic only, no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from danlu.data.config import Section

__all__ = ["CheckpointConfig", "EarlyStoppingConfig", "LoraConfig", "OptimizerConfig",
           "ScheduleConfig", "TrainConfig"]

# Validation metrics early stopping may watch (names as in eval/metrics.json, with "val.").
# Classification (category head) and regression (number head: rmse, mae, r2, mape).
VAL_METRICS = ("val.loss", "val.accuracy", *(f"val.{m}_{a}" for m in ("precision", "recall", "f1")
                                             for a in ("macro", "micro", "weighted")),
               "val.rmse", "val.mae", "val.r2", "val.mape")

OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "adam", "adamw", "rmsprop"]
ScheduleName = Literal["constant", "step", "cosine", "onecycle", "plateau", "linear"]


class OptimizerConfig(Section):
    name: OptimizerName = "adam"
    # 1e-3 is Adam's published default (Kingma & Ba 2015); SGD-family recipes want ~0.05.
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    # Decay biases and norm-layer weights too? None = "no" for adamw (the usual transformer
    # practice: decaying a scale or an offset only fights the norm layers; nanoGPT decays
    # only parameters with 2+ dimensions) and "yes" for the others (torch's plain behaviour).
    decay_bias_and_norm: bool | None = None
    # Used by momentum and nesterov only; 0.9 is the usual heavy-ball value.
    momentum: float = Field(0.9, ge=0, lt=1)
    # Used by adam and adamw only (torch defaults).
    betas: tuple[float, float] = (0.9, 0.999)
    # adam/adamw: the AMSGrad variant (Reddi et al. 2018); off as in torch.
    amsgrad: bool = False
    # Added to denominators for adam, adamw, rmsprop, adagrad; None = torch's default per
    # optimizer (1e-8, and 1e-10 for adagrad) so an unset recipe trains exactly like torch.
    eps: float | None = Field(None, gt=0)
    # rmsprop: smoothing constant of the squared-gradient average (torch default 0.99).
    alpha: float = Field(0.99, gt=0, lt=1)
    # adagrad: learning-rate decay per step (torch default 0, Duchi et al. 2011 use none).
    lr_decay: float = Field(0.0, ge=0)


class ScheduleConfig(Section):
    # constant keeps lr fixed, the least surprising default; cosine with warmup is the usual
    # choice for long runs, onecycle for short fixed budgets (Smith & Topin 2017).
    name: ScheduleName = "constant"
    # cosine, linear: epochs of linear warmup from 0 to lr (may be fractional); 0 = none.
    # linear = warmup then a straight line down to min_lr_ratio (BERT's fine-tuning schedule).
    warmup_epochs: float = Field(0.0, ge=0)
    # cosine: the lr the curve ends at, as a fraction of lr (0 = decay to zero, SGDR's choice).
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    # step: multiply lr by gamma every step_epochs epochs (ResNet's 0.1 every 30 epochs, scaled).
    step_epochs: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    # onecycle: share of steps spent rising to lr (torch and fastai default 0.3); lr is the peak.
    pct_start: float = Field(0.3, gt=0, lt=1)
    # plateau: multiply lr by `factor` after `patience` epochs without improvement of the
    # early-stopping metric (torch defaults 0.1 and 10 are tuned for 100+ epoch runs; 3 suits
    # the ~30-epoch runs here).
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(3, ge=0)


class CheckpointConfig(Section):
    # One checkpoint per epoch makes a crash cost at most one epoch.
    every_epochs: int = Field(1, ge=0)
    # Steps (optimizer updates) between mid-epoch checkpoints; 0 = off. Set it when an epoch
    # is long (hours) so a crash costs minutes.
    every_steps: int = Field(0, ge=0)
    # Older checkpoints are deleted; 3 survives one corrupt file and one bad epoch.
    keep_last: int = Field(3, ge=1)


class EarlyStoppingConfig(Section):
    # A validation metric of the run's head; None = the head's own (category: val.accuracy,
    # number: val.rmse). The head says which way is better: loss, rmse, mae, mape are
    # minimized; accuracy, F1, ..., r2 maximized.
    metric: str | None = None
    # Epochs without improvement before stopping; 0 turns early stopping off.
    patience: int = Field(5, ge=0)

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None and v not in VAL_METRICS:
            raise ValueError(f"expected one of {', '.join(VAL_METRICS)}")
        return v


class LoraConfig(Section):
    """LoRA adapters (Hu et al. 2021) via peft, merged into the weights when training ends."""

    # Rank of each adapter's update; 8 is the paper's sweet spot for attention projections.
    r: int = Field(8, ge=1)
    # The update is scaled by alpha / r; alpha = 2r is the common choice.
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    # Names of the Linear modules to adapt (BERT-style encoders: query, key, value, dense).
    targets: list[str] = Field(["query", "value"], min_length=1)


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    # 64 keeps the 2-core CPU busy without hurting generalization on small sets.
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    # Clip the global gradient norm to this value (Pascanu et al. 2013); 0 = off, since small
    # CNNs and MLPs rarely explode and clipping hides a too-high lr.
    clip_norm: float = Field(0.0, ge=0)
    # Micro-batches summed before each optimizer step: an effective batch of
    # batch_size * accumulate in the memory of one batch. 1 = plain training.
    accumulate: int = Field(1, ge=1)
    # fp32 everywhere by default (exact, and small models gain little); bf16 autocast runs on
    # CPU (AMX) and GPU without a loss scaler; fp16 needs a CUDA GPU and uses a grad scaler.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    # Deterministic kernels: bitwise-reproducible runs and exact resume. Free on CPU; on a GPU
    # it costs some speed (set false there when speed matters more than replay).
    deterministic: bool = True
    # cpu is the only device here; "auto" picks cuda > mps > cpu.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Torch intra-op threads; 0 = this process's share of the cores (danlu.threads: all of
    # them for one process, cores / nproc for each DDP rank, OMP_NUM_THREADS when you set it).
    threads: int = Field(0, ge=0)
    # Processes on this machine (DDP under torchrun; gloo on CPU, nccl on GPU). batch_size
    # stays the global batch, so results match one process. 1 = no torch.distributed at all.
    nproc: int = Field(1, ge=1)
    # Text models: LoRA adapters instead of full fine-tuning (null = train the weights
    # themselves, minus what model.freeze holds).
    lora: LoraConfig | None = None
    # Text models: batches of similar lengths (shuffled pools of 50 batches sorted by length,
    # batch order shuffled, all seeded), so dynamic padding cuts little. Off = plain shuffle.
    length_bucketing: bool = True
