"""The augmenter: recipe steps in order, seeded, on normalized batches; mixup gives soft targets.

Where augmentation happens: fit() trains on normalized tensors, so each call maps the batch back
to raw scale (x * scale + shift), rescales images to [0, 1] by the training split's pixel range
(kornia's photometric ops clamp to [0, 1]; geometric ops and erasing fill with 0, i.e. the
darkest training pixel: the background of digits), applies the steps, and normalizes again. So a
recipe's degrees, shifts, brightness and erase fills mean the same thing whatever the normalizer.

Targets: without mixup the labels pass through as class indices. Mixup (Zhang et al. 2018)
returns soft targets, rows of class probabilities [N, C] (lam * onehot(y) + (1 - lam) *
onehot(y[perm])); torch's CrossEntropyLoss takes either form, so the loss line does not change.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from danlu.data.config import IMAGE_AUGMENTATIONS, AugmentStep
from danlu.errors import RecipeError

__all__ = ["Augmenter", "NoAugment", "build_augmenter"]


class NoAugment:
    """The identity: what fit() uses when the recipe lists no augmentation."""

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 step: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y


class Augmenter:
    """Recipe steps applied in order to (normalized x, y), seeded by the batch's position
    (epoch, batch) when given, so a resumed run draws what an uninterrupted one would."""

    def __init__(self, steps: Sequence[AugmentStep], shift: torch.Tensor, scale: torch.Tensor,
                 num_classes: int, image_shape: Sequence[int] | None = None,
                 pixel_range: tuple[float, float] = (0.0, 1.0), seed: int = 0,
                 mask: torch.Tensor | None = None):
        from danlu.data.augment.image import image_op
        from danlu.data.augment.table import mixup, noise

        self.steps = list(steps)
        self.shift, self.scale = shift.reshape(1, -1).float(), scale.reshape(1, -1).float()
        self.num_classes, self.seed, self.calls = num_classes, seed, 0
        self.image_shape = tuple(image_shape) if image_shape else None
        lo, hi = pixel_range
        self.lo, self.span = float(lo), float(hi - lo) or 1.0
        self.ops = []
        for i, step in enumerate(self.steps):
            name, params = step.name, step.params
            if name in IMAGE_AUGMENTATIONS:
                if self.image_shape is None:
                    raise RecipeError(f"preprocess.augment.{i}.{name}", got=name,
                                      expected="image data for an image augmentation",
                                      hint="for tables use noise or mixup")
                self.ops.append((True, image_op(name, params, self.image_shape)))
            elif name == "noise":
                self.ops.append((False, noise(params, mask)))
            else:
                self.ops.append((False, mixup(params, num_classes, mask)))

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 step: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        epoch, batch = step if step is not None else (0, self.calls)
        with torch.random.fork_rng(devices=[]):  # own stream: model init/dropout RNG untouched
            torch.manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + batch)
            for on_images, op in self.ops:  # (on raw-scale images?, the step)
                if on_images:
                    x = self._on_images(op, x)
                else:
                    x, y = op(x, y)
        return x, y

    def _on_images(self, op, x: torch.Tensor) -> torch.Tensor:
        shift, scale = self.shift.to(x.device), self.scale.to(x.device)
        img = ((x * scale + shift - self.lo) / self.span).reshape(len(x), *self.image_shape)
        img = op(img).reshape(len(x), -1)
        return ((img * self.span + self.lo) - shift) / scale


def build_augmenter(steps: Sequence[AugmentStep], features: Sequence, head, seed: int):
    """The recipe's augmenter for a model's features, or NoAugment. Each step must be one the
    features' types take (`Feature.augmentations`); image steps work on the image feature's
    pixels, de-normalized with its fitted statistics."""
    if not steps:
        return NoAugment()
    for i, step in enumerate(steps):
        if not any(step.name in f.augmentations for f in features):
            takers = ", ".join(sorted({f.type for f in features})) or "no"
            raise RecipeError(f"preprocess.augment.{i}.{step.name}", got=step.name,
                              expected=f"an augmentation the data's {takers} features take: "
                                       f"{', '.join(a for f in features for a in f.augmentations) or 'none'}",
                              hint="image steps (rotate, translate, ...) are for images; noise and "
                                   "mixup for tables; text takes none")
    # One feature: its normalizer maps batches back to raw scale (image steps act on pixels).
    state = features[0].state_dict() if len(features) == 1 else {}
    norm = state.get("normalize")
    shift = torch.as_tensor(norm["shift"]) if norm else torch.zeros(1)
    scale = torch.as_tensor(norm["scale"]) if norm else torch.ones(1)
    shape = features[0].image_shape if len(features) == 1 else None
    # 1 over the columns of continuous features (numbers), 0 over codes (categories).
    mask = None
    if not all(f.continuous for f in features):
        mask = torch.cat([torch.full((f.width(),), float(f.continuous)) for f in features])
    return Augmenter(steps, shift, scale, head.size, shape,
                     tuple(state.get("pixel_range", (0.0, 1.0))), seed, mask)
