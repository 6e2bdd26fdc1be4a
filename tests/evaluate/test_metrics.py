"""Every metric against scikit-learn's on the same predictions, to 1e-6 (multi-class and binary)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from danlu.evaluate.calibration import calibration
from danlu.evaluate.metrics import classification_metrics, curves
from danlu.evaluate.regression import regression_metrics

TOL = 1e-6


def _predictions(n_classes: int, n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy but informative classifier: softmax of (signal on the true class + noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    logits = rng.normal(size=(n, n_classes)) * 1.5
    logits[np.arange(n), y] += 1.2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), y


@pytest.fixture(params=[5, 2], ids=["multiclass", "binary"])
def case(request):
    probs, y = _predictions(request.param)
    labels = [f"c{i}" for i in range(request.param)]
    m = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y), labels)
    return probs, y, labels, m


def test_label_metrics_match_sklearn(case):
    probs, y, labels, m = case
    pred = probs.argmax(axis=1)
    assert m["n"] == len(y)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=TOL)
    for avg in ("macro", "micro", "weighted"):
        assert m[f"precision_{avg}"] == pytest.approx(skm.precision_score(y, pred, average=avg), abs=TOL)
        assert m[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg), abs=TOL)
        assert m[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, pred, average=avg), abs=TOL)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred)
    for i, lab in enumerate(labels):
        row = m["per_class"][lab]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]), abs=TOL)
        assert row["support"] == s[i]
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    np.testing.assert_allclose(m["confusion_matrix_normalized"],
                               skm.confusion_matrix(y, pred, normalize="true"), atol=TOL)


def test_probability_metrics_match_sklearn(case):
    probs, y, labels, m = case
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs), abs=TOL)
    if len(labels) == 2:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probs[:, 1]), abs=TOL)
        assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, probs[:, 1]), abs=TOL)
        assert "top3_accuracy" not in m  # top-k with k >= classes is always 1
    else:
        assert m["roc_auc"] == pytest.approx(
            skm.roc_auc_score(y, probs, multi_class="ovr", average="macro"), abs=TOL)
        onehot = np.eye(len(labels))[y]
        assert m["pr_auc"] == pytest.approx(
            skm.average_precision_score(onehot, probs, average="macro"), abs=TOL)
        assert m["top3_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, probs, k=3), abs=TOL)
        assert m["top3_accuracy"] > m["accuracy"]


@pytest.mark.parametrize("n_classes", [2, 5])
def test_tied_scores_rank_as_sklearn_ranks_them(n_classes):
    """Scores in steps of 0.1 (many ties): ROC-AUC counts a tie as half, average precision takes
    each distinct score as one threshold, top-k breaks ties as scikit-learn does; a class that
    is predicted but absent from y, or never predicted, averages as in scikit-learn."""
    probs, y = _predictions(n_classes, n=300, seed=7)
    probs = np.round(probs, 1)
    probs[:, 0] = 1 - probs[:, 1:].sum(axis=1)  # rows still sum to 1
    m = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y),
                               [f"c{i}" for i in range(n_classes)])
    classes = [1] if n_classes == 2 else range(n_classes)
    auc = np.mean([skm.roc_auc_score(y == c, probs[:, c]) for c in classes])
    ap = np.mean([skm.average_precision_score(y == c, probs[:, c]) for c in classes])
    assert m["roc_auc"] == pytest.approx(auc, abs=TOL) and m["pr_auc"] == pytest.approx(ap, abs=TOL)
    pred = probs.argmax(axis=1)
    for avg in ("macro", "weighted"):
        assert m[f"f1_{avg}"] == pytest.approx(
            skm.f1_score(y, pred, average=avg, zero_division=0), abs=TOL)
    if n_classes > 3:
        assert m["top3_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, probs, k=3), abs=TOL)


def test_curves_match_sklearn(case):
    probs, y, labels, _ = case
    c = curves(torch.from_numpy(probs), torch.from_numpy(y), labels, max_points=10_000)
    cls = 1 if len(labels) == 2 else 3
    fpr, tpr, _ = skm.roc_curve(y == cls, probs[:, cls], drop_intermediate=False)
    got = c["roc"][labels[cls]]
    np.testing.assert_allclose(got["fpr"], fpr, atol=1e-5)  # stored rounded to 5 decimals
    np.testing.assert_allclose(got["tpr"], tpr, atol=1e-5)
    prec, rec, _ = skm.precision_recall_curve(y == cls, probs[:, cls], drop_intermediate=False)
    np.testing.assert_allclose(c["pr"][labels[cls]]["precision"], prec, atol=1e-5)
    np.testing.assert_allclose(c["pr"][labels[cls]]["recall"], rec, atol=1e-5)


def test_reliability_bins_match_sklearn_calibration_curve_and_ece():
    probs, y = _predictions(2, n=2000, seed=3)
    cal = calibration(torch.from_numpy(probs), torch.from_numpy(y), bins=10)
    freq, conf = calibration_curve(y, probs[:, 1], n_bins=10, strategy="uniform")
    rel = cal["reliability"]
    np.testing.assert_allclose(rel["frequency"], freq, atol=TOL)
    np.testing.assert_allclose(rel["confidence"], conf, atol=TOL)
    # ECE: calibration_curve's bins weighted by their share of rows (bins as it draws them)
    idx = np.searchsorted(np.linspace(0, 1, 11)[1:-1], probs[:, 1], side="right")
    w = np.bincount(idx, minlength=10)[np.bincount(idx, minlength=10) > 0] / len(y)
    ece = float(np.sum(w * np.abs(freq - conf)))
    assert cal["ece"] == pytest.approx(ece, abs=TOL)


def test_top_label_ece_is_the_textbook_formula():
    probs, y = _predictions(5, n=1000, seed=4)
    cal = calibration(torch.from_numpy(probs), torch.from_numpy(y), bins=15)
    conf, hit = probs.max(axis=1), (probs.argmax(axis=1) == y)
    b = np.minimum((conf * 15).astype(int), 14)
    ece = sum(abs(hit[b == k].mean() - conf[b == k].mean()) * (b == k).mean()
              for k in range(15) if (b == k).any())
    assert cal["ece"] == pytest.approx(ece, abs=TOL)
    assert cal["reliability"]["kind"] == "top label" and sum(cal["reliability"]["count"]) == 1000


def test_regression_metrics_match_sklearn_on_diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    x, y = load_diabetes(return_X_y=True)
    pred = LinearRegression().fit(x[:300], y[:300]).predict(x[300:])
    m = regression_metrics(pred, y[300:])  # the numpy metrics the number head reports
    truth = y[300:]
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(truth, pred), rel=TOL)
    assert m["rmse"] ** 2 == pytest.approx(skm.mean_squared_error(truth, pred), rel=TOL)
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(truth, pred), rel=TOL)
    assert m["r2"] == pytest.approx(skm.r2_score(truth, pred), abs=TOL)
    assert 0.3 < m["r2"] < 0.7  # a linear model explains about half the variance here


def test_a_class_missing_from_the_split_drops_auc_but_keeps_the_rest():
    probs, y = _predictions(4, n=200)
    keep = y != 2
    m = classification_metrics(torch.from_numpy(probs[keep]), torch.from_numpy(y[keep]),
                               ["a", "b", "c", "d"])
    assert "roc_auc" not in m and m["per_class"]["c"]["support"] == 0
    pred = probs[keep].argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y[keep], pred), abs=TOL)
    assert (pred == 2).any()  # predicted though absent: sklearn leaves it out of balanced accuracy
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        want = skm.balanced_accuracy_score(y[keep], pred)
    assert m["balanced_accuracy"] == pytest.approx(want, abs=TOL)
