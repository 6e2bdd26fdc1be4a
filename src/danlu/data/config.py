"""Recipe sections `data` and `preprocess` (pydantic only, no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DataConfig", "PreprocessConfig", "SplitConfig"]

SOURCE_KINDS = ("sklearn", "csv", "parquet")
SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


class Section(BaseModel):
    """Every recipe section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(Section):
    # 15% / 20% leaves digits ~1,150 training rows: enough for the CNN, and a test split of
    # ~360 rows gives an accuracy CI about +-1.5 pt wide.
    val: float = Field(0.15, gt=0, lt=1, description="fraction of all rows for validation")
    test: float = Field(0.2, gt=0, lt=1, description="fraction of all rows for the test split")
    # Stratified keeps class shares equal across splits; it matters for small or skewed sets.
    stratify: bool = True

    @model_validator(mode="after")
    def _room_for_training(self) -> SplitConfig:
        if self.val + self.test >= 0.9:
            raise ValueError(f"val + test = {self.val + self.test:.2f} leaves under 10% to train;"
                             " lower them, e.g. val: 0.15, test: 0.2")
        return self


class DataConfig(Section):
    # sklearn:NAME uses a set bundled with scikit-learn (no download); csv:/parquet: read a file.
    source: str = Field("sklearn:digits", description="sklearn:NAME, csv:PATH or parquet:PATH")
    # The label column of a csv/parquet file; sklearn sets know their own target.
    target: str | None = None
    # Set for image data stored as flat rows (channels, height, width); sklearn:digits sets
    # [1, 8, 8] by itself. The model input stays flat, the CNN reshapes inside the graph.
    image_shape: list[int] | None = None
    split: SplitConfig = SplitConfig()

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        kind, sep, rest = v.partition(":")
        if not sep or kind not in SOURCE_KINDS or not rest:
            raise ValueError(f"expected 'sklearn:NAME', 'csv:PATH' or 'parquet:PATH', got {v!r}")
        if kind == "sklearn" and rest not in SKLEARN_SETS:
            raise ValueError(f"sklearn set {rest!r} is not bundled; one of {', '.join(SKLEARN_SETS)}")
        return v

    @field_validator("image_shape")
    @classmethod
    def _chw(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or min(v) < 1):
            raise ValueError(f"expected [channels, height, width] of positive ints, got {v}")
        return v

    @model_validator(mode="after")
    def _target_for_files(self) -> DataConfig:
        if not self.source.startswith("sklearn:") and not self.target:
            raise ValueError("data.target must name the label column of a csv/parquet source")
        return self


class PreprocessConfig(Section):
    # z-score is the safe default for gradient training; fitted on the training split only
    # and baked into the exported ONNX graph, so serving sees the same transformation.
    normalize: Literal["zscore", "minmax", "none"] = "zscore"
