"""The report's figures: matplotlib (Agg) figures returned as inline SVG strings."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["confusion", "curves", "mistakes", "pareto", "reliability", "training", "tuning"]

INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
ACCENT = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777",
          "#65a30d", "#475569", "#ea580c")


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",      # text stays text: small files, the page's font
        "svg.hashsalt": "danlu",     # stable element ids: the same run gives the same file
        "font.family": "sans-serif", "font.size": 9, "axes.titlesize": 10,
        "axes.edgecolor": MUTED, "axes.labelcolor": INK, "text.color": INK,
        "xtick.color": MUTED, "ytick.color": MUTED, "axes.grid": True, "grid.color": GRID,
        "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    })
    return plt


def _svg(fig) -> str:
    """The figure as an <svg> element (no XML prolog), sized by CSS to its container."""
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # Drop the fixed pt size: the viewBox keeps the aspect ratio, CSS sets the width.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="plot"', text, count=1)


def training(history: list[dict[str, Any]]) -> str:
    """Loss (train, val), validation metrics and learning rate per epoch."""
    plt = _plt()
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.0))
    ax = axes[0]
    for key, label, color in (("train_loss", "train", ACCENT[0]), ("val_loss", "validation", ACCENT[1])):
        if key in history[0]:
            ax.plot(epochs, [r[key] for r in history], color=color, label=label, lw=1.8)
    ax.set(title="loss", xlabel="epoch")
    ax.legend()
    ax = axes[1]
    metrics = [k for k in history[0] if k.startswith("val_") and k != "val_loss"]
    for i, key in enumerate(metrics):
        ax.plot(epochs, [r[key] for r in history], color=ACCENT[(i + 2) % len(ACCENT)],
                label=key.removeprefix("val_"), lw=1.8)
    ax.set(title="validation metrics", xlabel="epoch")
    ax.legend()
    ax = axes[2]
    if "lr" in history[0]:
        ax.plot(epochs, [r["lr"] for r in history], color=ACCENT[4], lw=1.8)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.set(title="learning rate", xlabel="epoch")
    fig.tight_layout()
    return _svg(fig)


def confusion(counts: Sequence[Sequence[int]], labels: list[str]) -> str:
    """Heat map of the row-normalized confusion matrix, each cell annotated with its count."""
    plt = _plt()
    cm = np.asarray(counts, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(labels)
    size = min(7.5, 2.2 + 0.42 * n)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    mesh = ax.pcolormesh(norm, cmap="Blues", vmin=0, vmax=1, edgecolors="white", linewidth=0.5)
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)
    ax.grid(False)
    ticks = np.arange(n) + 0.5
    ax.set_xticks(ticks, labels, rotation=45 if max(map(len, labels)) > 3 else 0)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="predicted", ylabel="true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j + 0.5, i + 0.5, f"{int(cm[i, j])}", ha="center", va="center",
                            fontsize=8 if n <= 12 else 6,
                            color="white" if norm[i, j] > 0.55 else INK)
    fig.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    return _svg(fig)


def curves(data: dict[str, Any], roc_auc: float | None, pr_auc: float | None) -> str:
    """ROC and precision-recall curves, one line per class (one-vs-rest)."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.0))
    for i, (lab, c) in enumerate(data.get("roc", {}).items()):
        a.plot(c["fpr"], c["tpr"], color=ACCENT[i % len(ACCENT)], lw=1.3, label=lab)
    a.plot([0, 1], [0, 1], color=MUTED, lw=0.8, ls="--")
    title = "ROC (one-vs-rest)" + (f", macro AUC {roc_auc:.3f}" if roc_auc is not None else "")
    a.set(title=title, xlabel="false positive rate", ylabel="true positive rate",
          xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    for i, (lab, c) in enumerate(data.get("pr", {}).items()):
        b.plot(c["recall"], c["precision"], color=ACCENT[i % len(ACCENT)], lw=1.3, label=lab)
    title = "precision-recall" + (f", macro AP {pr_auc:.3f}" if pr_auc is not None else "")
    b.set(title=title, xlabel="recall", ylabel="precision", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    if len(data.get("roc", {})) > 1:
        b.legend(title="class", fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    return _svg(fig)


def regression(pred: np.ndarray, y: np.ndarray) -> str:
    """Predicted against actual (the diagonal is a perfect model) and residuals against the
    prediction (a pattern means an error the model makes systematically)."""
    plt = _plt()
    pred, y = np.asarray(pred, np.float64), np.asarray(y, np.float64)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0))
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    left.scatter(y, pred, s=10, color=ACCENT[0], alpha=0.6, edgecolors="none")
    left.plot([lo, hi], [lo, hi], color=MUTED, ls="--", lw=1, label="predicted = actual")
    left.set(title="predicted vs actual", xlabel="actual", ylabel="predicted")
    left.legend(loc="upper left", fontsize=8)
    right.scatter(pred, y - pred, s=10, color=ACCENT[1], alpha=0.6, edgecolors="none")
    right.axhline(0, color=MUTED, ls="--", lw=1)
    right.set(title="residuals", xlabel="predicted", ylabel="actual - predicted")
    fig.tight_layout()
    return _svg(fig)


def reliability(rel: dict[str, Any], ece: float) -> str:
    """Reliability diagram: observed frequency against mean confidence per bin, and the counts."""
    plt = _plt()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.2, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    edges = np.asarray(rel["edges"])
    width = edges[1] - edges[0]
    left = edges[np.asarray(rel["bin"], dtype=int)]
    top.bar(left, rel["frequency"], width=width, align="edge", color=ACCENT[0], alpha=0.75,
            edgecolor="white", label="observed")
    top.plot([0, 1], [0, 1], color=MUTED, ls="--", lw=1, label="perfect calibration")
    top.plot(rel["confidence"], rel["frequency"], "o", color=ACCENT[1], ms=3.5, label="bin mean")
    what = "confidence (top label)" if rel["kind"] == "top label" else "predicted probability"
    top.set(title=f"reliability, ECE {ece:.3f}", ylabel="observed frequency", ylim=(0, 1.02))
    top.legend(loc="upper left", fontsize=8, frameon=True, framealpha=0.92, edgecolor="none")
    bottom.bar(left, rel["count"], width=width, align="edge", color=ACCENT[8], edgecolor="white")
    bottom.set(xlabel=what, ylabel="rows", xlim=(0, 1))
    fig.tight_layout()
    return _svg(fig)


def mistakes(images: np.ndarray, titles: list[str], cols: int = 8) -> str:
    """A grid of small images (N, C, H, W), each titled "true → predicted (p)"."""
    plt = _plt()
    n = len(images)
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.25, rows * 1.45), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        img = np.asarray(images[k], dtype=float)
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None, interpolation="nearest")
        ax.set_title(titles[k], fontsize=7.5)
    fig.tight_layout(pad=0.4)
    return _svg(fig)


def tuning(values: list[float], maximize: bool, metric: str,
           numbers: Sequence[int] | None = None) -> str:
    """Each trial's objective (at its trial number) and the best so far."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.0))
    x = np.asarray(numbers) if numbers is not None else np.arange(len(values))
    ax.plot(x, values, "o", color=ACCENT[0], ms=4, label="trial")
    best = np.maximum.accumulate(values) if maximize else np.minimum.accumulate(values)
    ax.step(x, best, where="post", color=ACCENT[1], lw=1.5, label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title="tuning trials")
    ax.legend()
    fig.tight_layout()
    return _svg(fig)


def pareto(rows: list[dict[str, Any]], x_key: str, x_label: str, front: list[str],
           chosen: str | None, x_scale: float = 1.0) -> str:
    """The rows' test metric (their `metric`: accuracy, rmse, ...; with its 95% CI) against a
    cost, one point per variant: rejected variants as grey crosses, the Pareto front (of
    variants that pass the gates) joined by a line, the chosen variant ringed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    xs = [r[x_key] * x_scale for r in rows]
    metric = rows[0].get("metric", "accuracy")
    ci_key = f"{metric}_ci"
    ys = [r[metric] for r in rows]
    lo = min([*ys, *(r[ci_key][0] for r in rows if r.get(ci_key))])
    hi = max([*ys, *(r[ci_key][1] for r in rows if r.get(ci_key))])
    # the axes' extent (x from 0, margins included), to stack labels in about one text line
    dx, dy = (max(xs) * 1.3) or 1.0, ((hi - lo) * 1.24) or 1.0
    placed: list[tuple[float, float]] = []
    for r in rows:
        x, y = r[x_key] * x_scale, r[metric]
        # Labels of nearby points are stacked (one line, ~7% of the y range, up each time)
        # instead of printed over each other.
        near = 0
        while any(abs(x - px) < 0.12 * dx and abs(y + near * 0.05 * dy - py) < 0.045 * dy
                  for px, py in placed):
            near += 1
        placed.append((x, y + near * 0.05 * dy))
        ci = r.get(ci_key)
        ok = r.get("passed", True)
        if ci:
            ax.errorbar([x], [y], yerr=[[max(0.0, y - ci[0])], [max(0.0, ci[1] - y)]], fmt="none",
                        ecolor=GRID if not ok else "#bfc5cc", lw=1, capsize=2, zorder=1)
        ax.plot([x], [y], "x" if not ok else "o", color=MUTED if not ok else ACCENT[0],
                ms=7 if not ok else 6, zorder=3)
        ax.annotate(str(r["name"]), (x, y), textcoords="offset points", xytext=(5, 4 + 11 * near),
                    fontsize=7.5,
                    color=MUTED if not ok else INK, zorder=4)
    on = sorted((r for r in rows if r["name"] in front), key=lambda r: r[x_key])
    if on:
        ax.plot([r[x_key] * x_scale for r in on], [r[metric] for r in on], "-", color=ACCENT[1],
                lw=1.6, zorder=2, label="Pareto front")
    for r in rows:
        if r["name"] == chosen:
            ax.plot([r[x_key] * x_scale], [r[metric]], "o", ms=14, mfc="none", mec=ACCENT[2],
                    mew=2, zorder=5, label=f"chosen: {chosen}")
    ax.plot([], [], "o", color=ACCENT[0], label="passes the gates")
    if any(not r.get("passed", True) for r in rows):
        ax.plot([], [], "x", color=MUTED, label="rejected")
    lower = " (lower is better)" if rows[0].get("lower_is_better") else ""
    ax.set(xlabel=x_label, ylabel=f"test {metric}{lower}")
    ax.set_xlim(left=0)
    ax.margins(x=0.15, y=0.12)
    ax.legend(fontsize=7.5, loc="best")
    fig.tight_layout()
    return _svg(fig)
