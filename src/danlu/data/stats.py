"""Streaming per-column statistics: Welford/Chan moments, running min/max, a bottom-k sample.

Memory is fixed by the number of columns and the sample size, never by the number of rows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RunningStats"]


class RunningStats:
    """Count, mean, variance, min, max and quantiles of columns fed in chunks.

    Moments: Chan, Golub & LeVeque (1979) pairwise update of Welford's (n, mean, M2), exact up
    to float64 rounding. Quantiles (median, IQR): a uniform random sample of `sample` rows kept
    by bottom-k sampling (each row gets a seeded uniform key; the k smallest keys survive), so
    they are exact while rows <= sample and otherwise have a rank error of about
    sqrt(p (1 - p) / sample): +-0.16 percentile points at the median with the default 100,000.
    """

    def __init__(self, columns: int, sample: int = 100_000, seed: int = 0):
        self.n = 0
        self.mean = np.zeros(columns)
        self.m2 = np.zeros(columns)
        self.min = np.full(columns, np.inf)
        self.max = np.full(columns, -np.inf)
        self.sample_size, self._rng = sample, np.random.default_rng(seed)
        self._keys = np.empty(0)
        self._sample = np.empty((0, columns))

    def update(self, x: np.ndarray, keep_sample: bool = True) -> RunningStats:
        """Fold in a chunk of rows [n, columns]."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        m = len(x)
        if m == 0:
            return self
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.n + m
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (m / n)
        self.m2 = self.m2 + m2_b + delta ** 2 * (self.n * m / n)
        self.n = n
        self.min = np.minimum(self.min, x.min(axis=0))
        self.max = np.maximum(self.max, x.max(axis=0))
        if keep_sample:
            keys = np.concatenate([self._keys, self._rng.random(m)])
            rows = np.concatenate([self._sample, x])
            if len(keys) > self.sample_size:
                top = np.argpartition(keys, self.sample_size)[: self.sample_size]
                keys, rows = keys[top], rows[top]
            self._keys, self._sample = keys, rows
        return self

    @property
    def var(self) -> np.ndarray:
        """Population variance (ddof 0, as numpy's std default)."""
        return self.m2 / max(self.n, 1)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def quantile(self, q: float) -> np.ndarray:
        """Per-column q-quantile of the kept sample (exact while all rows fit in it)."""
        if len(self._sample) == 0:
            return np.zeros(self.mean.shape)
        return np.quantile(self._sample, q, axis=0)

    @property
    def exact_quantiles(self) -> bool:
        return self.n <= self.sample_size
