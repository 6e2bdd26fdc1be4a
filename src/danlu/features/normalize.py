"""Normalizers of number and image features, fitted on the training split; their state is JSON,
applied inside the ONNX graph (features/graph.py: Normalize).

Every kind ends as one `(x - shift) / scale` per feature, the form export bakes into the graph:
per-channel statistics are pooled over a channel's pixels and repeated for each of its pixels.
Missing cells (NaN) are ignored: each column's statistics are those of its present values
(a number feature imputes the missing ones in the graph before normalizing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.data.stats import RunningStats

__all__ = ["KINDS", "Normalizer", "make_normalizer"]

# kind -> (shift, scale) from the running statistics of the training split.
STATISTICS = {
    "zscore": lambda s: (s.mean, s.std),
    "minmax": lambda s: (s.min, s.max - s.min),
    "robust": lambda s: (s.quantile(0.5), s.quantile(0.75) - s.quantile(0.25)),
    "none": lambda s: (np.zeros_like(s.mean), np.ones_like(s.mean)),
}
KINDS = tuple(STATISTICS)
# Kinds that need a sample of rows (quantiles), not only the moments.
SAMPLED = ("robust",)


class Normalizer:
    """y = (x - shift_) / scale_, per feature (scikit-learn style: fit() sets the `_` attributes).

    kind: zscore (mean/std), minmax (min/range), robust (median/IQR), none.
    per: "feature", or "channel" with image_shape=(C, H, W) for images stored as flat rows.
    `partial_fit` folds in chunks (streaming; robust uses RunningStats' documented sample).
    """

    def __init__(self, kind: str = "zscore", eps: float = 1e-8, per: str = "feature",
                 image_shape: list[int] | tuple[int, ...] | None = None, sample: int = 100_000):
        if kind not in KINDS:
            raise ValueError(f"normalize: {kind!r} is not one of {', '.join(KINDS)}")
        if per not in ("feature", "channel"):
            raise ValueError(f"per: {per!r} is not one of feature, channel")
        if per == "channel" and not image_shape:
            raise ValueError("per: channel needs image data (an image_shape [C, H, W])")
        self.kind, self.eps, self.per, self.sample = kind, eps, per, sample
        self.image_shape = list(image_shape) if image_shape else None
        self._stats: RunningStats | None = None

    # ---- fitting ----
    def fit(self, x: np.ndarray) -> Normalizer:
        self._stats = None
        return self.partial_fit(x)

    def partial_fit(self, x: np.ndarray) -> Normalizer:
        """Fold in a chunk of training rows [n, features] and refresh shift_/scale_."""
        x = np.asarray(x, dtype=np.float64)
        self.n_features_in_ = x.shape[1]
        cols = x
        if self.per == "channel":
            c = self.image_shape[0]
            # [n, C*H*W] -> [n*H*W, C]: every pixel of a channel is one observation.
            cols = x.reshape(len(x), c, -1).transpose(0, 2, 1).reshape(-1, c)
        if self._stats is None:
            self._stats = RunningStats(cols.shape[1], sample=self.sample)
        self._stats.update(cols, keep_sample=self.kind in SAMPLED)
        self._finish()
        return self

    def _finish(self) -> None:
        shift, scale = STATISTICS[self.kind](self._stats)
        # A column with no present value (min = inf) is left as is.
        shift = np.where(np.isfinite(shift), shift, 0.0)
        # A constant column has no spread: divide by 1, so it maps to 0 instead of inf/NaN.
        scale = np.where(np.isfinite(scale) & (scale > self.eps), scale, 1.0)
        if self.per == "channel":
            pixels = self.n_features_in_ // self.image_shape[0]
            shift, scale = np.repeat(shift, pixels), np.repeat(scale, pixels)
        self.shift_, self.scale_ = shift.astype(np.float32), scale.astype(np.float32)

    # ---- applying ----
    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.shift_) / self.scale_).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) * self.scale_ + self.shift_).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    # ---- state (JSON; export reads kind, shift, scale) ----
    def state_dict(self) -> dict[str, Any]:
        state = {"kind": self.kind, "eps": self.eps, "per": self.per,
                 "shift": self.shift_.tolist(), "scale": self.scale_.tolist()}
        if self.image_shape:
            state["image_shape"] = self.image_shape
        if self._stats is not None and self.kind in SAMPLED:
            state["quantiles"] = "exact" if self._stats.exact_quantiles else \
                f"approximate (uniform sample of {self.sample} rows)"
        return state

    def load_state_dict(self, state: dict[str, Any]) -> Normalizer:
        self.kind, self.eps = state["kind"], state.get("eps", 1e-8)
        self.per, self.image_shape = state.get("per", "feature"), state.get("image_shape")
        self.shift_ = np.asarray(state["shift"], dtype=np.float32)
        self.scale_ = np.asarray(state["scale"], dtype=np.float32)
        self.n_features_in_ = len(self.shift_)
        return self


def make_normalizer(state: dict[str, Any]) -> Normalizer:
    return Normalizer(state["kind"]).load_state_dict(state)

