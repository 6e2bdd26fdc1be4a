"""Bootstrap intervals cover the truth at about their nominal rate; paired tests compare models."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from danlu.evaluate.metrics import classification_metrics
from danlu.evaluate.stats import (
    CI_METRICS,
    bootstrap_ci,
    confusion_metrics,
    mcnemar,
    paired_bootstrap,
    weighted_roc_auc,
)
from tests.evaluate.test_metrics import _predictions


def test_confusion_metrics_equal_the_reported_metrics():
    probs, y = _predictions(6, n=400, seed=1)
    m = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y), list("abcdef"))
    got = confusion_metrics(np.array(m["confusion_matrix"]))
    for k in CI_METRICS:
        assert float(got[k]) == pytest.approx(m[k], abs=1e-6), k


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    probs, y = _predictions(4, n=300)
    pred = probs.argmax(1)
    ci = bootstrap_ci(y, pred, probs, resamples=500, seed=7)
    point = confusion_metrics(np.bincount(y * 4 + pred, minlength=16).reshape(4, 4))
    assert set(ci) == {*CI_METRICS, "log_loss", "roc_auc"}
    for k in CI_METRICS:
        lo, hi = ci[k]
        assert lo < float(point[k]) < hi and hi - lo < 0.2, k
    assert ci == bootstrap_ci(y, pred, probs, resamples=500, seed=7)
    assert ci != bootstrap_ci(y, pred, probs, resamples=500, seed=8)


def test_bootstrap_ci_covers_the_true_accuracy_at_the_nominal_rate():
    """200 simulated test sets of 300 rows from a classifier whose true accuracy is 0.9."""
    rng = np.random.default_rng(2024)
    true_acc, n, sets = 0.9, 300, 200
    t0 = time.perf_counter()
    covered, widths = 0, []
    for s in range(sets):
        y = rng.integers(0, 3, size=n)
        wrong = rng.random(n) > true_acc
        pred = np.where(wrong, (y + 1 + rng.integers(0, 2, size=n)) % 3, y)
        lo, hi = bootstrap_ci(y, pred, resamples=1000, confidence=0.95, seed=s)["accuracy"]
        covered += lo <= true_acc <= hi
        widths.append(hi - lo)
    coverage = covered / sets
    assert coverage >= 0.90, coverage
    # ... and not by being needlessly wide: the normal-approximation width is 2*1.96*sqrt(pq/n).
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.sqrt(0.9 * 0.1 / n), rel=0.1)
    assert time.perf_counter() - t0 < 30


def test_paired_bootstrap_sees_a_real_difference_and_not_a_fake_one():
    probs, y = _predictions(5, n=600, seed=5)
    base = probs.argmax(1)
    same = paired_bootstrap(y, base, base.copy(), resamples=300)
    assert same["diff"] == 0 and same["ci"] == [0.0, 0.0] and same["p_value"] == 1.0
    better = base.copy()
    fix = np.flatnonzero(better != y)[:60]  # the candidate fixes 60 of the baseline's mistakes
    better[fix] = y[fix]
    r = paired_bootstrap(y, base, better, metric="accuracy", resamples=1000, seed=1)
    assert r["diff"] == pytest.approx(60 / 600)
    assert r["ci"][0] > 0.05 and r["p_value"] < 0.01
    worse = paired_bootstrap(y, better, base, metric="f1_macro", resamples=1000, seed=1)
    assert worse["ci"][1] < 0
    with pytest.raises(ValueError, match="not one of"):
        paired_bootstrap(y, base, better, metric="auc")


def test_mcnemar_matches_hand_computed_values():
    y = np.zeros(100, dtype=int)
    def models(b: int, c: int) -> tuple[np.ndarray, np.ndarray]:
        a, k = np.zeros(100, int), np.zeros(100, int)
        k[:b] = 1          # only the baseline right
        a[b:b + c] = 1     # only the candidate right
        return a, k
    r = mcnemar(y, *models(10, 2))
    assert (r["b"], r["c"], r["method"]) == (10, 2, "exact binomial")
    assert r["p_value"] == pytest.approx(2 * (1 + 12 + 66) / 4096)
    r = mcnemar(y, *models(40, 20))
    assert r["statistic"] == pytest.approx(19 ** 2 / 60)
    assert r["p_value"] == pytest.approx(0.014171, abs=1e-6)
    assert mcnemar(y, y, y)["p_value"] == 1.0


@pytest.mark.parametrize("n_classes", [2, 5])
def test_weighted_roc_auc_matches_sklearn(n_classes):
    from sklearn.metrics import roc_auc_score

    probs, y = _predictions(n_classes, n=300, seed=9)
    probs = np.round(probs, 2)  # ties, counted half as sklearn does
    probs /= probs.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    counts = np.stack([np.ones(300, int), rng.integers(0, 4, size=300)])
    got = weighted_roc_auc(y, probs, counts)
    if n_classes == 2:
        want = [roc_auc_score(y, probs[:, 1], sample_weight=w) for w in counts]
    else:
        want = [np.mean([roc_auc_score(y == c, probs[:, c], sample_weight=w) for c in range(5)])
                for w in counts]
        assert want[0] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"), abs=1e-12)
    np.testing.assert_allclose(got, want, atol=1e-12)
