"""The model's sections: training curves, metrics, confusion, ROC/PR, calibration, mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import danlu.report.plots as plots
from danlu.evaluate.summary import format_ci, lead_metrics
from danlu.report.common import e, figure, jsonl, load, num, table

__all__ = ["calibration", "confusion", "curves", "metrics", "mistakes", "residuals", "training"]

MAX_MISTAKES = 24


def training(d: Path) -> str:
    history = jsonl(d / "train" / "history.jsonl")
    if not history:
        return ""
    s = load(d / "train" / "summary.json") or {}
    txt = ""
    if s:
        txt = (f"<p>{s.get('epochs_run')} epochs in {s.get('seconds', 0):.1f} s; best "
               f"{e(s.get('metric'))} {num(s.get('best_value'))} at epoch {s.get('best_epoch')}"
               f"{' (stopped early)' if s.get('stopped_early') else ''}. The weights of the best "
               "epoch are the model evaluated below.</p>")
    return (f'<section id="training"><h2>Training</h2>{txt}'
            f"{figure(plots.training(history))}</section>")


def metrics(d: Path, metrics: dict[str, Any] | None, labels: list[str]) -> str:
    if not metrics:
        return ""
    test, val = metrics["test"], metrics.get("val", {})
    ci = test.get("ci", {})
    conf = test.get("ci_method", {}).get("confidence", 0.95)
    rows = [[f"<b>{e(k)}</b>", format_ci(test[k], ci.get(k)),
             num(val[k]) if isinstance(val.get(k), float) else ""]
            for k in lead_metrics(test) if isinstance(test.get(k), float)]
    out = (f'<section id="metrics"><h2>Metrics</h2>'
           f'{table(("metric", f"test [{conf:.0%} CI]", "validation"), rows, "num metrics")}')
    per = test.get("per_class", {})
    if per:
        def bar(v: float) -> str:
            return (f'<span class="bar"><span style="width:{max(0.0, min(1.0, v)) * 100:.1f}%">'
                    f"</span></span> {v:.3f}")

        prow = [[e(lab), bar(p["precision"]), bar(p["recall"]), bar(p["f1"]), num(p["support"])]
                for lab, p in per.items()]
        head = ("class", "precision", "recall", "F1", "support")
        out += f'<h3>Per class (test)</h3>{table(head, prow, "num")}'
    ext = sorted((d / "eval").glob("external-*.json"))
    if ext:
        erows = []
        for f in ext:
            m = load(f) or {}
            if "accuracy" in m:
                c = m.get("ci", {})
                erows.append([e(m.get("source", f.name)), e(m.get("model", "")), num(m.get("n")),
                              format_ci(m["accuracy"], c.get("accuracy")),
                              format_ci(m["f1_macro"], c.get("f1_macro")),
                              "⚠ imbalance" if m.get("warnings") else ""])
        out += ("<h3>Other data sets (danlu evaluate)</h3>"
                + table(("data", "model", "rows", "accuracy", "macro-F1", ""), erows, "num"))
    return out + "</section>"


def confusion(metrics: dict[str, Any] | None, labels: list[str]) -> str:
    if not metrics or "confusion_matrix" not in metrics["test"]:
        return ""
    return ('<section id="confusion"><h2>Confusion matrix (test)</h2>'
            + figure(plots.confusion(metrics["test"]["confusion_matrix"], labels),
                      "Rows are the true class, columns the prediction; colour is the share of "
                      "the true class, numbers are row counts.") + "</section>")


def curves(d: Path, metrics: dict[str, Any] | None) -> str:
    c = load(d / "eval" / "curves.json")
    if not c or not metrics or not c.get("roc"):
        return ""
    t = metrics["test"]
    return ('<section id="curves"><h2>ROC and precision-recall curves (test)</h2>'
            + figure(plots.curves(c, t.get("roc_auc"), t.get("pr_auc"))) + "</section>")


def calibration(metrics: dict[str, Any] | None) -> str:
    if not metrics or "reliability" not in metrics["test"]:
        return ""
    t = metrics["test"]
    return ('<section id="calibration"><h2>Calibration (test)</h2><div class="row">'
            + figure(plots.reliability(t["reliability"], t["ece"]))
            + f'<p class="aside">Expected calibration error <b>{t["ece"]:.3f}</b>: on average, '
              "the model's stated confidence differs from how often it is right by this much "
              "(weighted over confidence bins). Bars under the diagonal mean over-confidence, "
              f"above it under-confidence. Log loss {t.get('log_loss', float('nan')):.3f}.</p>"
            + "</div></section>")


def residuals(d: Path) -> str:
    """A regression's test predictions against the targets, and its residuals."""
    pred_file = d / "eval" / "predictions.npz"
    if not pred_file.is_file():
        return ""
    with np.load(pred_file, allow_pickle=False) as z:
        pred, y = z["probs"], z["y"]
    if pred.ndim != 1 or not len(y):
        return ""
    err = y - pred
    worst = np.argsort(-np.abs(err), kind="stable")[:5]
    txt = ("<p>Largest errors: " + ", ".join(f"actual {y[i]:.4g}, predicted {pred[i]:.4g}"
                                             for i in worst) + ".</p>")
    return ('<section id="residuals"><h2>Predictions (test)</h2>'
            + figure(plots.regression(pred, y), "Each dot is a test row. Left: on the dashed "
                     "line the prediction is exact. Right: residuals should scatter evenly "
                     "around 0 at every predicted value.") + txt + "</section>")


def mistakes(d: Path, info: dict[str, Any] | None) -> str:
    pred_file = d / "eval" / "predictions.npz"
    if not pred_file.is_file() or not info:
        return ""
    with np.load(pred_file, allow_pickle=False) as z:
        probs, y, rows = z["probs"], z["y"], z["rows"]
        xs = z["x"] if "x" in z.files else None
    if probs.ndim != 2:  # a regression's values: see `residuals`
        return ""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    head = '<section id="mistakes"><h2>Worst mistakes (test)</h2>'
    if len(wrong) == 0:
        return head + "<p>No test row is misclassified.</p></section>"
    conf = probs[wrong, pred[wrong]]
    order = wrong[np.argsort(-conf, kind="stable")][:MAX_MISTAKES]
    labels = info["labels"]
    intro = (f"<p>{len(wrong)} of {len(y)} test rows are misclassified; the "
             f"{len(order)} the model was most sure of are shown, most confident first.</p>")
    if xs is None:
        return head + intro + "</section>"
    x = xs[order]
    if np.issubdtype(x.dtype, np.str_):  # text: the start of each article instead of a feature row
        trows = [[num(int(rows[i])), e(labels[y[i]]), e(labels[pred[i]]), f"{probs[i, pred[i]]:.3f}",
                  e(_cut(str(x[j])))] for j, i in enumerate(order)]
        return head + intro + table(("row", "true", "predicted", "p", "text"), trows) + "</section>"
    shape = info.get("image_shape")
    if shape:
        titles = [f"{labels[y[i]]} → {labels[pred[i]]} ({probs[i, pred[i]]:.2f})" for i in order]
        svg = plots.mistakes(x.reshape(len(order), *shape), titles)
        width = min(8, len(order)) * 115  # ~115 px per digit, however few there are
        return (head + intro + f'<div style="max-width:{width}px;margin:auto">'
                + figure(svg, "true → predicted (probability of the prediction)") + "</div></section>")
    names = info.get("feature_names") or [f"f{i}" for i in range(x.shape[1])]
    k = min(6, len(names))
    trows = [[num(int(rows[i])), e(labels[y[i]]), e(labels[pred[i]]), f"{probs[i, pred[i]]:.3f}",
              *(num(float(v)) for v in x[j, :k])] for j, i in enumerate(order)]
    return (head + intro + table(("row", "true", "predicted", "p", *names[:k]), trows, "num")
            + "</section>")


def _cut(text: str, chars: int = 160) -> str:
    """One line of at most `chars` characters, cut at a word with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"
