"""Augmentation of training batches: one class per kind, built from `preprocess.augment`.

`build_augmenter(...)` returns a callable `(x, y) -> (x, targets)` on normalized batches; the
training loop calls it once per batch. Image steps run through kornia, table steps in torch.
"""

from __future__ import annotations

from danlu.data.augment.base import Augmenter, NoAugment, build_augmenter

__all__ = ["Augmenter", "NoAugment", "build_augmenter"]
