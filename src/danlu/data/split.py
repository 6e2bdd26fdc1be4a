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


# Up to this many rows scikit-learn's splitter decides (the splits danlu always gave); above,
# split_codes uses a stratified split in numpy that needs ~20 bytes per row instead of ~120.
SKLEARN_MAX_ROWS = 200_000


def split_codes(y: np.ndarray, val: float, test: float, seed: int,
                stratify: bool = True) -> tuple[np.ndarray, bool]:
    """(int8 code per row: 0 train, 1 val, 2 test; whether stratified)."""
    if len(y) <= SKLEARN_MAX_ROWS:
        parts = split_indices(y, val, test, seed, stratify)
        codes = np.zeros(len(y), np.int8)
        codes[parts["val"]], codes[parts["test"]] = 1, 2
        return codes, bool(parts["stratified"])
    counts = np.bincount(y)
    strat = bool(stratify and counts[counts > 0].min() >= 3)
    rng = np.random.default_rng(seed)
    groups = y if strat else np.zeros(len(y), np.int64)
    # A random order inside each class: sort by (class, random key).
    order = np.lexsort((rng.random(len(y)), groups))
    sizes = np.bincount(groups)
    codes = np.zeros(len(y), np.int8)
    start = 0
    for n in sizes:
        if n == 0:
            continue
        n_test, n_val = int(round(n * test)), int(round(n * val))
        codes[order[start:start + n_test]] = 2
        codes[order[start + n_test:start + n_test + n_val]] = 1
        start += n
    return codes, strat
