"""Recipe section `model`: one config class per architecture, chosen by `arch` (no torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from danlu.data.config import Section

__all__ = ["CNNConfig", "MLPConfig", "ModelConfig"]


class MLPConfig(Section):
    arch: Literal["mlp"] = "mlp"
    # Two hidden layers of 128 fit every bundled tabular set in seconds on 2 cores.
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 128]
    dropout: float = Field(0.1, ge=0, lt=1)


class CNNConfig(Section):
    arch: Literal["cnn"] = "cnn"
    # Channels per 3x3 conv block (each block halves height and width when it can).
    channels: list[Annotated[int, Field(ge=1)]] = Field([16, 32], min_length=1)
    # Width of the fully connected layer before the classifier.
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


ModelConfig = Annotated[MLPConfig | CNNConfig, Field(discriminator="arch")]
