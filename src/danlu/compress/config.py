"""Recipe section `compress` (pydantic only, no torch): variants, the budget, search, promotion."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from danlu.data.config import AugmentStep, Section
from danlu.models.config import ModelConfig

__all__ = ["BudgetConfig", "CompressConfig", "DistillConfig", "LatencyConfig", "PruneConfig",
           "QATConfig", "QuantizeConfig", "SearchConfig", "VariantConfig", "check_parents"]


class PruneConfig(Section):
    # magnitude: unstructured, exact zeros (torch.nn.utils.prune); structured: whole channels and
    # neurons removed (Torch-Pruning), so layers physically shrink and latency falls.
    method: Literal["magnitude", "structured"] = "magnitude"
    # global ranks all weights together (layers end with different sparsities); layer prunes
    # each layer to the same fraction. Magnitude pruning only.
    scope: Literal["global", "layer"] = "global"
    # Fraction of Conv/Linear weights set to exactly zero (magnitude pruning).
    sparsity: float = Field(0.8, ge=0, lt=1)
    # Fraction of channels/neurons removed per layer (structured pruning; classifier kept whole).
    ratio: float = Field(0.5, ge=0, lt=1)
    # gradual: cubic ramp 0 -> sparsity over the first 3/4 of fine-tuning (Zhu & Gupta 2017);
    # oneshot: prune once, then fine-tune.
    schedule: Literal["gradual", "oneshot"] = "gradual"
    finetune_epochs: int = Field(5, ge=0)
    # Adam at 1e-3 recovers the pruned digits CNN in a few epochs.
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)


class QATConfig(Section):
    # Short fine-tuning under int8 fake quantization at a small learning rate: the weights move
    # onto the int8 grid without forgetting what training found.
    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(64, ge=1)


class QuantizeConfig(Section):
    # static: int8 QDQ with calibration (convolutions); dynamic: int8 weights, activations
    # quantized at run time (Linear-heavy graphs); fp16: half-precision weights;
    # auto: builds dynamic and static, measures both and keeps the faster that passes the gates;
    # qat: quantization-aware fine-tuning (settings in `qat`), then static int8 QDQ — for when
    # post-training static quantization loses more accuracy than the budget allows.
    mode: Literal["static", "dynamic", "fp16", "auto", "qat"] = "static"
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    # Rows drawn (seeded) from the training split to calibrate activation ranges.
    calibration_samples: int = Field(512, ge=1)
    # One scale per output channel: keeps accuracy where channel ranges differ a lot.
    per_channel: bool = True
    # Quantization-aware training (mode: qat only).
    qat: QATConfig = QATConfig()


class DistillConfig(Section):
    # Any registry model; None = the teacher's family's student (danlu.models Family.student):
    # MLP/CNN: the teacher's architecture with every width times `width`; transformer: the
    # teacher keeping every other layer. A transformer student names `layers` to keep.
    student: ModelConfig | None = None
    width: float = Field(0.5, gt=0, le=1)
    # Hinton et al. 2015: a soft temperature of 2-8 carries the teacher's dark knowledge.
    temperature: float = Field(4.0, gt=0)
    # Weight of the soft (teacher) term; 1 - alpha goes to cross-entropy on the labels.
    alpha: float = Field(0.7, ge=0, le=1)
    epochs: int = Field(30, ge=1)
    lr: float = Field(2e-3, gt=0)
    # cosine: lr falls to 0 along a half cosine over the epochs (students trained on a teacher
    # converge to its function late, Beyer et al. 2022); constant: lr throughout. Both the
    # distilled student and the one trained alone follow it.
    schedule: Literal["cosine", "constant"] = "cosine"
    batch_size: int = Field(64, ge=1)
    # Augmentation for distillation ("function matching", Beyer et al. 2022): each batch is
    # augmented (same steps as preprocess.augment) and the teacher labels the augmented inputs, so
    # the student sees the teacher's soft labels on new images every epoch. The student trained
    # without the teacher gets the same augmented batches, so the comparison stays fair.
    augment: list[AugmentStep] = []


class VariantConfig(Section):
    # `from` (a Python keyword) is read and written as `from`.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # The parent: "baseline" or an earlier variant's name. Gates compare with the parent.
    from_: str = Field("baseline", alias="from")
    # Applied in this order when several are given: distill -> prune -> quantize.
    distill: DistillConfig | None = None
    prune: PruneConfig | None = None
    quantize: QuantizeConfig | None = None

    @model_validator(mode="after")
    def _does_something(self) -> VariantConfig:
        if self.distill is None and self.prune is None and self.quantize is None:
            raise ValueError(f"variant {self.name!r} needs one of prune, quantize, distill, e.g. "
                             "quantize: {mode: static}")
        return self


class BudgetConfig(Section):
    # The test metric every variant is gated on, compared with the baseline, and that the
    # search and the Pareto fronts use: one the head scores (category: accuracy, f1_macro, ...;
    # number: rmse, mae, r2, mape). None = the head's main metric (accuracy; rmse).
    metric: str | None = Field(None, min_length=1)
    # Largest drop of `metric` vs the baseline a variant may have (a hard gate), as the head
    # counts it: classification metrics absolutely (0.01 = 1 pt); regression errors (rmse, mae,
    # mape) relatively (0.05 = RMSE at most 5% above the baseline's), R² absolutely.
    # None = max_accuracy_drop for a classification head, 0.05 for a regression head.
    max_metric_drop: float | None = Field(None, ge=0)
    # Classification: largest test-accuracy drop vs the baseline (0.01 = 1 pt); the limit on
    # `metric` when max_metric_drop is not set. A regression head takes max_metric_drop.
    max_accuracy_drop: float = Field(0.01, ge=0, le=1)
    # Classification: smallest share of test rows on which a variant must give its parent's
    # label. Not applied to a head without labels (regression: the metric gate decides).
    min_label_agreement: float = Field(0.95, ge=0, le=1)
    # Limits for choosing the variant to ship (None = no limit): latency at batch 32 in ms (as served),
    # and package size in MB (the deflated ONNX, so that zeros count as compressed).
    max_latency_ms: float | None = Field(None, gt=0)
    max_size_mb: float | None = Field(None, gt=0)
    # Among the variants within budget, ship the smallest or the fastest.
    prefer: Literal["size", "latency"] = "size"


class LatencyConfig(Section):
    # Same threads for every model; 2 = the cores of the CI machine.
    threads: int = Field(2, ge=1)
    # Timed runs per batch size (median reported), after warm-up runs.
    runs: int = Field(100, ge=5)
    warmup: int = Field(10, ge=0)
    # A variant slower than its parent at batch 32 by more than this fraction is rejected
    # (the fraction absorbs timing noise: parent and child are timed interleaved).
    speed_tolerance: float = Field(0.10, ge=0)


class SearchConfig(Section):
    trials: int = Field(12, ge=1)
    sampler: Literal["nsga2", "tpe"] = "nsga2"
    # Short fine-tuning per trial keeps a search of 12 trials within minutes on 2 cores.
    finetune_epochs: int = Field(3, ge=0)
    distill_epochs: int = Field(10, ge=1)


class CompressConfig(Section):
    # The model to compress: "train" = this run's trained model; or a path: another run folder
    # of the same data (its torch model and normalizer), or a model package folder (ONNX only:
    # quantize variants work from it, distill/prune variants need a run's torch weights).
    baseline: str = Field("train", min_length=1)
    # null: the model family's defaults (MLP/CNN: pruned80, slim50, int8, student,
    # student-int8; transformer: student, int8, student-int8), recorded in pareto.json.
    variants: list[VariantConfig] | None = None
    budget: BudgetConfig = BudgetConfig()
    latency: LatencyConfig = LatencyConfig()
    search: SearchConfig = SearchConfig()
    # true: the chosen variant becomes the run's package/ (the original is kept as package.orig/).
    promote: bool = False

    @field_validator("variants")
    @classmethod
    def _parents_known(cls, v: list[VariantConfig] | None) -> list[VariantConfig] | None:
        if v is None:
            return v
        check_parents(v)
        return v


def check_parents(v: list[VariantConfig]) -> None:
    """Unique names; each `from` is the baseline or an earlier variant (ValueError otherwise)."""
    seen = {"baseline"}
    for i, var in enumerate(v):
        if var.name in seen:
            raise ValueError(f"variants[{i}].name {var.name!r} is used twice (or is 'baseline')")
        if var.from_ not in seen:
            raise ValueError(f"variants[{i}].from {var.from_!r} is not 'baseline' or an earlier "
                             f"variant (one of {', '.join(sorted(seen))})")
        seen.add(var.name)
