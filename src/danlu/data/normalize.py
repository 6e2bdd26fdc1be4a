"""Per-feature normalizers fitted on the training split; their state is JSON, applied in-graph."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Normalizer", "make_normalizer"]


class Normalizer:
    """y = (x - shift_) / scale_, per feature (scikit-learn style: fit() sets the `_` attributes)."""

    def __init__(self, kind: str = "zscore", eps: float = 1e-8):
        if kind not in ("zscore", "minmax", "none"):
            raise ValueError(f"normalize: {kind!r} is not one of zscore, minmax, none")
        self.kind, self.eps = kind, eps

    def fit(self, x: np.ndarray) -> Normalizer:
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "zscore":
            shift, scale = x.mean(axis=0), x.std(axis=0)
        elif self.kind == "minmax":
            shift, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        else:
            shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
        # A constant column has no spread: divide by 1, so it maps to 0 instead of inf/NaN.
        scale = np.where(scale > self.eps, scale, 1.0)
        self.shift_, self.scale_ = shift.astype(np.float32), scale.astype(np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.shift_) / self.scale_).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "eps": self.eps, "shift": self.shift_.tolist(),
                "scale": self.scale_.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> Normalizer:
        self.kind, self.eps = state["kind"], state.get("eps", 1e-8)
        self.shift_ = np.asarray(state["shift"], dtype=np.float32)
        self.scale_ = np.asarray(state["scale"], dtype=np.float32)
        return self


def make_normalizer(state: dict[str, Any]) -> Normalizer:
    return Normalizer(state["kind"]).load_state_dict(state)
