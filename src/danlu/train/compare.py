"""compare_optimizers: the same model, initial weights and data order, trained with each
optimizer; loss and validation-metric curves on one figure plus a table."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from danlu.data.stage import data, load_splits
from danlu.recipe import Recipe, load_recipe
from danlu.runs import Run, atomic_write, write_json
from danlu.train.inputs import Inputs
from danlu.train.loop import fit, watched_metric
from danlu.train.optim import optimizers
from danlu.train.stage import resolve_device, seed_everything

__all__ = ["DEFAULT_LR", "CompareResult", "compare_optimizers", "epochs_to_reach"]

# Usual starting learning rates per optimizer (SGD-family 10-50x Adam's; Adam's 1e-3 doubled
# as the digits recipe uses), not tuned per problem: one shared lr would only tell which
# optimizer suits that lr. The recipe's own optimizer keeps the recipe's lr; `lrs`
# (--lr NAME=LR) overrides any of them.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.02, "adam": 0.002,
              "adamw": 0.002, "rmsprop": 0.001}


@dataclass
class CompareResult:
    dir: Path  # the run folder's compare/ subfolder
    rows: list[dict[str, Any]]
    metric: str


def epochs_to_reach(values: list[float], fraction: float = 0.95, maximize: bool = True) -> int:
    """First epoch (1-based) whose value is within `fraction` of the best one."""
    best = max(values) if maximize else min(values)
    target = best * fraction if maximize else best / fraction
    return next(i for i, v in enumerate(values, 1) if (v >= target if maximize else v <= target))


def compare_optimizers(recipe: str | Path | dict | Recipe, names: list[str],
                       overrides: list[str] | dict | None = None, out: str | Path = "runs",
                       lrs: dict[str, float] | None = None) -> CompareResult:
    """Train the recipe's model once per optimizer (early stopping off, all epochs run)."""
    rec = load_recipe(recipe, overrides)
    for name in names:
        optimizers[name]  # a typo is a RecipeError naming the choices, before any work
    run = Run.create(rec, out)
    data(run, rec.data)
    inputs = Inputs(load_splits(run), rec.model, resolve_device(rec.train.device))
    train_xy, val_xy = inputs.xy("train"), inputs.xy("val")
    seed_everything(rec.seed)
    model = inputs.build()
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    init_sha = hashlib.sha256(b"".join(v.cpu().numpy().tobytes() for v in init.values())).hexdigest()
    metric = watched_metric(rec.train, inputs.head)
    key = metric.replace(".", "_") if metric.removeprefix("val.") in inputs.head.epoch_metrics \
        else f"val_{inputs.head.epoch_metrics[1]}"
    maximize = not inputs.head.lower_is_better(key.removeprefix("val_"))
    rows = []
    for name in names:
        lr = (lrs or {}).get(name) or (rec.train.optimizer.lr if name == rec.train.optimizer.name
                                       else DEFAULT_LR[name])
        cfg = rec.train.model_copy(update={
            "optimizer": rec.train.optimizer.model_copy(update={"name": name, "lr": lr}),
            "early_stopping": rec.train.early_stopping.model_copy(update={"patience": 0})})
        model.load_state_dict(init)
        seed_everything(rec.seed)  # the same dropout draws; fit() seeds the data order itself
        t0 = time.perf_counter()
        result = fit(model, train_xy, val_xy, inputs.head, cfg, rec.seed)
        wall = time.perf_counter() - t0
        curve = [r[key] for r in result.history]
        best = max(curve) if maximize else min(curve)
        rows.append({"optimizer": name, "lr": lr, f"best_{key}": best,
                     "best_epoch": curve.index(best) + 1,
                     "epochs_to_95pct": epochs_to_reach(curve, 0.95, maximize),
                     "wall_seconds": round(wall, 3), "history": result.history})
    outdir = run.stage_dir("compare")
    write_json(outdir / "compare.json", {"recipe": rec.name, "metric": key, "epochs": rec.train.epochs,
                                         "initial_weights_sha256": init_sha, "seed": rec.seed,
                                         "rows": rows})
    atomic_write(outdir / "compare.md", markdown_table(rows, key))
    plot_curves(rows, key, outdir)
    return CompareResult(outdir, rows, key)


def markdown_table(rows: list[dict[str, Any]], key: str) -> str:
    lines = [f"| optimizer | lr | best {key} | best epoch | epochs to 95% of best | wall s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['optimizer']} | {r['lr']:g} | {r[f'best_{key}']:.4f} | {r['best_epoch']} | "
              f"{r['epochs_to_95pct']} | {r['wall_seconds']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_curves(rows: list[dict[str, Any]], key: str, outdir: Path) -> None:
    """One figure: training and validation loss (left), the validation metric (right)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, r in enumerate(rows):
        color = f"C{i}"
        epochs = [h["epoch"] for h in r["history"]]
        ax_loss.plot(epochs, [h["train_loss"] for h in r["history"]], color=color,
                     label=f"{r['optimizer']} train")
        ax_loss.plot(epochs, [h["val_loss"] for h in r["history"]], color=color, linestyle="--",
                     label=f"{r['optimizer']} val")
        ax_metric.plot(epochs, [h[key] for h in r["history"]], color=color, marker=".",
                       label=f"{r['optimizer']} (lr {r['lr']:g})")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", yscale="log", title="loss")
    ax_metric.set(xlabel="epoch", ylabel=key, title=f"validation {key.removeprefix('val_')}")
    ax_loss.legend(fontsize=7, ncol=2)
    ax_metric.legend(fontsize=8)
    fig.tight_layout()
    for fmt in ("svg", "png"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110)
        atomic_write(outdir / f"curves.{fmt}", buf.getvalue())
    plt.close(fig)
