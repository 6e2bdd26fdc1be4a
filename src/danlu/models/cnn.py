"""`cnn`: a small convolutional network for one image feature (flat pixel rows, reshaped first)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from danlu.models.base import WIDTH_FAMILY_VARIANTS, Family, models
from danlu.models.config import ModelSection

__all__ = ["CNNConfig", "CNNFamily"]


class CNNConfig(ModelSection):
    arch: Literal["cnn"] = "cnn"
    # Channels per 3x3 conv block (each block halves height and width when it can).
    channels: list[Annotated[int, Field(ge=1)]] = Field([16, 32], min_length=1)
    # Width of the fully connected layer before the classifier.
    hidden: int = Field(64, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


@models.register("cnn")
class CNNFamily(Family):
    config = CNNConfig
    accepts = ("image",)

    def check(self, cfg, features):
        super().check(cfg, features)
        if len(features) != 1:
            from danlu.errors import RecipeError

            raise RecipeError("data.features", got=[f.name for f in features],
                              expected="one image feature for model.arch cnn")

    def build(self, cfg, features, head):
        """[conv3x3 -> BN -> ReLU -> maxpool2] per channel width, then FC -> dropout -> head."""
        from torch import nn

        c, h, w = features[0].shape
        blocks: list[nn.Module] = [nn.Unflatten(1, (c, h, w))]
        for out in cfg.channels:
            blocks += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            if min(h, w) >= 4:  # pool while the map is big enough: 8x8 digits pool twice
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        blocks += [nn.Flatten(), nn.Linear(c * h * w, cfg.hidden), nn.ReLU(),
                   nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, head.size)]
        return nn.Sequential(*blocks)

    def compress_variants(self):
        return [dict(v) for v in WIDTH_FAMILY_VARIANTS]

    def scaled(self, cfg, width):
        def w(n: int) -> int:
            return max(1, round(n * width))

        return cfg.model_copy(update={"channels": [w(c) for c in cfg.channels],
                                      "hidden": w(cfg.hidden)})

    def widths(self, net, cfg):
        from torch import nn

        convs = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
        first_fc = next(m for m in net.modules() if isinstance(m, nn.Linear))
        return cfg.model_copy(update={"channels": convs, "hidden": first_fc.out_features})
