"""Compression's comparison with the baseline: paired interval and McNemar on real predictions."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from danlu.compress.gates import compare_to_baseline


def test_a_clearly_worse_model_is_significantly_worse_and_itself_is_not():
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    good = LogisticRegression(max_iter=2000).fit(xtr, ytr).predict(xte)
    bad = DecisionTreeClassifier(max_depth=4, random_state=0).fit(xtr, ytr).predict(xte)
    worse = compare_to_baseline(yte, bad, good)
    assert worse["accuracy_diff"] == np.mean(bad == yte) - np.mean(good == yte) < -0.1
    assert worse["significantly_worse"] and worse["mcnemar_p"] < 1e-6
    same = compare_to_baseline(yte, good, good)
    assert same["accuracy_diff"] == 0 and not same["significantly_worse"]
    assert same["mcnemar_p"] == 1.0
