"""The train stage: build the model from the recipe, fit it, save the best weights."""

from __future__ import annotations

import json
import random

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from danlu.data.stage import load_splits
from danlu.models import InputSpec, build_model, model_spec
from danlu.runs import Run, StageResult, atomic_write, write_json
from danlu.train.config import TrainConfig
from danlu.train.loop import fit

__all__ = ["resolve_device", "seed_everything", "train"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (initial weights and dropout follow the recipe's seed)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def train(run: Run, cfg: TrainConfig, fit_on: tuple[str, ...] = ("train",)) -> StageResult:
    """Write train/model.safetensors (best epoch), model.json and history.jsonl.

    fit_on: the splits trained on; ("train", "val") retrains a tuned configuration on both.
    """
    from safetensors.torch import save_file

    recipe = run.recipe
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    splits = load_splits(run)
    device = resolve_device(cfg.device)
    norm = splits.normalizer

    def tensors(*names: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = (np.concatenate([part[s] for s in names]) for part in (splits.x, splits.y))
        return torch.from_numpy(norm.transform(x)).to(device), torch.from_numpy(y).to(device)

    shape = splits.info["image_shape"]
    spec = InputSpec(features=int(splits.info["features"]),
                     image_shape=tuple(shape) if shape else None)
    seed_everything(recipe.seed)
    model = build_model(recipe.model, spec, splits.num_classes).to(device)
    out = run.stage_dir("train")
    history_path = out / "history.jsonl"
    history_path.unlink(missing_ok=True)

    with _progress(cfg.epochs) as (progress, task):
        def on_epoch(row: dict) -> None:
            with history_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            progress.update(task, advance=1, status=f"val acc {row['val_accuracy']:.4f} "
                                                    f"loss {row['val_loss']:.4f}")

        result = fit(model, tensors(*fit_on), tensors("val"), splits.info["labels"], cfg,
                     recipe.seed, on_epoch)
    state = {k: v.detach().cpu().contiguous() for k, v in result.best_state.items()}
    save_file(state, str(out / "model.safetensors.tmp"))
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    write_json(out / "model.json", model_spec(recipe.model, spec, splits.num_classes))
    summary = {"best_epoch": result.best_epoch, "best_value": result.best_value,
               "metric": cfg.early_stopping.metric, "epochs_run": len(result.history),
               "stopped_early": result.stopped_early, "fit_on": list(fit_on),
               "seconds": sum(r["seconds"] for r in result.history)}
    write_json(out / "summary.json", summary)
    atomic_write(history_path, "".join(json.dumps(r) + "\n" for r in result.history))
    return StageResult(paths={"weights": "train/model.safetensors", "model": "train/model.json",
                              "history": "train/history.jsonl"}, metrics=summary)


class _progress:
    """A rich progress bar over epochs, silent when stdout is not a terminal."""

    def __init__(self, epochs: int):
        from rich.console import Console

        console = Console()
        self.progress = Progress(TextColumn("train"), BarColumn(), TextColumn("{task.completed}/"
                                 "{task.total} epochs"), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn(), console=console,
                                 disable=not console.is_terminal)
        self.epochs = epochs

    def __enter__(self):
        self.progress.__enter__()
        return self.progress, self.progress.add_task("train", total=self.epochs, status="")

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)
