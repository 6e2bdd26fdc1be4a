"""Small convolutional network for images stored as flat rows (reshaped inside the model)."""

from __future__ import annotations

import torch
from torch import nn

from danlu.errors import RecipeError
from danlu.models import InputSpec, models
from danlu.models.config import CNNConfig


class CNN(nn.Module):
    """[conv3x3 -> BN -> ReLU -> maxpool2] per channel width, then FC -> dropout -> classifier."""

    def __init__(self, cfg: CNNConfig, image_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        blocks: list[nn.Module] = []
        for out in cfg.channels:
            blocks += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            if min(h, w) >= 4:  # pool while the map is big enough: 8x8 digits pool twice
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, cfg.hidden), nn.ReLU(),
                                  nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.image_shape)
        return self.head(self.features(x))


@models.register("cnn")
def cnn(cfg: CNNConfig, spec: InputSpec, num_classes: int) -> nn.Module:
    if spec.image_shape is None:
        raise RecipeError("model.arch", got="cnn", expected="image data (data.image_shape set)",
                          hint="set data.image_shape: [C, H, W], or use model.arch: mlp")
    return CNN(cfg, spec.image_shape, num_classes)
