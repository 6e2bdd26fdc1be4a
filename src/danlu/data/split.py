"""Seeded, stratified train/val/test split of row indices."""

from __future__ import annotations

import numpy as np

__all__ = ["split_indices"]


def split_indices(y: np.ndarray, val: float, test: float, seed: int,
                  stratify: bool = True) -> dict[str, np.ndarray]:
    """Indices of the train, val and test rows; stratified when every class has 3+ rows."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    counts = np.bincount(y)
    strat = stratify and counts[counts > 0].min() >= 3
    rest, test_idx = train_test_split(idx, test_size=test, random_state=seed,
                                      stratify=y if strat else None)
    train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test), random_state=seed,
                                          stratify=y[rest] if strat else None)
    return {"train": np.sort(train_idx), "val": np.sort(val_idx), "test": np.sort(test_idx),
            "stratified": np.array(strat)}
