"""`image`: pixels of one image per row, stored flat (C*H*W floats); the CNN (or any image
family) reshapes inside the graph. Normalized per feature or per channel on the training split."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.data.readers import Issue
from danlu.features.base import Feature, features
from danlu.features.normalize import Normalizer

__all__ = ["ImageFeature"]


@features.register("image")
class ImageFeature(Feature):
    type = "image"
    group = "pixels"  # the pixel columns of a flat image table are one image
    options_taken = ("normalize", "per", "shape")
    augmentations = ("rotate", "translate", "scale", "resized_crop", "hflip", "jitter", "erase",
                     "noise", "mixup")

    @property
    def shape(self) -> list[int]:
        """[channels, height, width]."""
        return list(self.options["shape"])

    @property
    def image_shape(self) -> list[int]:
        return self.shape

    def invalid(self, values: np.ndarray, clean: Any) -> list[Issue]:
        bad = ~np.isfinite(values)
        if not bad.any():
            return []
        return [Issue("nan_or_inf", bad.any(axis=1),
                      np.asarray(self.columns, dtype=object)[bad.argmax(axis=1)])]

    def _normalizer(self) -> Normalizer:
        n = getattr(self, "normalizer_", None)
        if n is None:
            n = self.normalizer_ = Normalizer(self.options.get("normalize", "zscore"),
                                              per=self.options.get("per", "feature"),
                                              image_shape=self.shape)
        return n

    def partial_fit(self, values: np.ndarray) -> ImageFeature:
        self._normalizer().partial_fit(values)
        lo, hi = float(np.min(values, initial=np.inf)), float(np.max(values, initial=-np.inf))
        old = getattr(self, "pixel_range_", (np.inf, -np.inf))
        self.pixel_range_ = (min(old[0], lo), max(old[1], hi))
        return self

    def state_dict(self) -> dict[str, Any]:
        n = self._normalizer()
        if not hasattr(n, "shift_"):
            n.fit(np.zeros((1, len(self.columns))))
        lo, hi = getattr(self, "pixel_range_", (0.0, 1.0))
        return {"normalize": n.state_dict(), "pixel_range": [lo, hi]}

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> ImageFeature:
        self.normalizer_ = Normalizer().load_state_dict(state["normalize"])
        self.pixel_range_ = tuple(state.get("pixel_range", (0.0, 1.0)))
        return self

    def column_inputs(self) -> list[dict[str, Any]]:
        """The image is one field of a raw row (its pixels, flat), not one per pixel."""
        return [self.client_input()]

    def form(self) -> dict[str, Any]:
        lo, hi = getattr(self, "pixel_range_", (0.0, 1.0))
        return {"name": self.name, "type": self.type, "widget": "image", "shape": self.shape,
                "pixel_max": float(hi)}

    def sketch(self, values: np.ndarray) -> tuple[np.ndarray, ...]:
        from danlu.data.dedup import average_hash

        return average_hash(values, self.shape)

    def near_pairs(self, sketch: tuple[np.ndarray, ...], cfg: Any) -> tuple[np.ndarray, dict]:
        from danlu.data.dedup import confirm_by_pixels, near_pairs_hash

        key, thumbs = sketch
        candidates = near_pairs_hash(key, cfg.max_distance)
        pairs = confirm_by_pixels(candidates, thumbs, cfg.max_pixel_diff)
        return pairs, {"method": "average hash (64 bit), confirmed on 8x8 thumbnails",
                       "max_distance": cfg.max_distance, "max_pixel_diff": cfg.max_pixel_diff,
                       "hash_candidates": len(candidates)}

    def module(self):
        from danlu.features.graph import Normalize

        s = self.state_dict()["normalize"]
        return Normalize(s["shift"], s["scale"])
