"""Image steps, each a kornia augmentation firing per sample with probability p."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["image_op"]


def image_op(name: str, p, image_shape: Sequence[int]):
    """The kornia module for one recipe step, on [N, C, H, W] images in [0, 1]."""
    import kornia.augmentation as K

    _, h, w = image_shape
    if name == "rotate":
        return K.RandomRotation(degrees=p.degrees, p=p.p)
    if name == "translate":
        return K.RandomAffine(degrees=0.0, translate=(p.fraction, p.fraction), p=p.p)
    if name == "scale":
        return K.RandomAffine(degrees=0.0, scale=tuple(p.range), p=p.p)
    if name == "resized_crop":
        return K.RandomResizedCrop(size=(h, w), scale=tuple(p.scale), p=p.p)
    if name == "hflip":
        return K.RandomHorizontalFlip(p=p.p)
    if name == "jitter":
        return K.ColorJitter(brightness=p.brightness, contrast=p.contrast, p=p.p)
    if name == "erase":
        return K.RandomErasing(scale=tuple(p.scale), p=p.p)
    raise ValueError(f"{name!r} is not an image augmentation")
