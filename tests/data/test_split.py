"""The large-data split (numpy, above SKLEARN_MAX_ROWS): seeded, stratified, right sizes."""

from __future__ import annotations

import numpy as np

from danlu.data.split import SKLEARN_MAX_ROWS, split_codes


def test_large_split_is_seeded_stratified_and_sized():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=SKLEARN_MAX_ROWS + 50_000, p=[0.7, 0.2, 0.08, 0.02])
    a, strat = split_codes(y, 0.15, 0.2, seed=1)
    b, _ = split_codes(y, 0.15, 0.2, seed=1)
    c, _ = split_codes(y, 0.15, 0.2, seed=2)
    assert strat and np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs((a == 2).mean() - 0.2) < 1e-3 and abs((a == 1).mean() - 0.15) < 1e-3
    for s in (0, 1, 2):  # every class has the same share in every split
        share = np.bincount(y[a == s], minlength=4) / (a == s).sum()
        assert np.abs(share - np.bincount(y) / len(y)).max() < 2e-3


def test_small_split_matches_the_scikit_learn_split():
    from sklearn.datasets import load_digits

    from danlu.data.split import split_indices

    y = load_digits().target
    codes, _ = split_codes(y, 0.15, 0.2, seed=0)
    parts = split_indices(y, 0.15, 0.2, seed=0)
    assert np.array_equal(np.flatnonzero(codes == 2), parts["test"])
    assert np.array_equal(np.flatnonzero(codes == 1), parts["val"])
