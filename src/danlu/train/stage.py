"""The train stage: build the model from the recipe, fit it, save the best weights."""

from __future__ import annotations

import hashlib
import json
import os
import random

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from danlu.data.augment import build_augmenter
from danlu.data.stage import load_splits
from danlu.models import InputSpec, build_model, model_spec
from danlu.runs import Run, StageResult, atomic_write, read_json, write_json
from danlu.train.checkpoint import CheckpointStore
from danlu.train.config import TrainConfig
from danlu.train.distributed import is_main, launch, world_size
from danlu.train.loop import fit
from danlu.train.text import prepare_text_model, save_text_run, text_tensors, token_lengths

__all__ = ["checkpoint_key", "resolve_device", "seed_everything", "set_deterministic", "train",
           "train_here"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (initial weights and dropout follow the recipe's seed)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    """Deterministic kernels (bitwise-repeatable runs); cuBLAS needs its workspace pinned."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)


def checkpoint_key(recipe) -> str:
    """What a checkpoint must share with the recipe to be resumed: the data, model and training
    settings (checkpoint cadence and thread count may change between the runs)."""
    d = recipe.to_dict()
    train = {k: v for k, v in d["train"].items() if k not in ("checkpoint", "threads")}
    blob = json.dumps([d["seed"], d["data"], d["preprocess"], d["model"], train], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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

    Checkpoints go to train/checkpoints/; when one made by the same recipe is there (a crashed
    or killed run), training continues from it exactly. With train.nproc > 1 the training runs
    in that many DDP processes under torchrun; rank 0 writes the files.
    fit_on: the splits trained on; ("train", "val") retrains a tuned configuration on both."""
    if cfg.nproc > 1 and world_size() == 1:
        launch(run.dir, cfg.nproc)
        summary = read_json(run.path("train", "summary.json"))
    else:
        summary = train_here(run, cfg, fit_on)
    weights = ({"model_folder": "train/model"} if run.path("train", "model").is_dir()
               else {"weights": "train/model.safetensors"})
    return StageResult(paths={**weights, "model": "train/model.json",
                              "history": "train/history.jsonl"}, metrics=summary)


def train_here(run: Run, cfg: TrainConfig, fit_on: tuple[str, ...] = ("train",)) -> dict:
    """The train stage in this process (one rank of many under torchrun); returns the summary."""
    from safetensors.torch import save

    recipe = run.recipe
    main = is_main()  # only rank 0 writes files
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
    text = splits.info.get("kind") == "text"
    if text:  # tokenized by TextEncoder, packed as [rows, 2, width] int64 (danlu.train.text)
        tensors = text_tensors(recipe, splits, device)  # noqa: F811
    set_deterministic(cfg.deterministic)
    seed_everything(recipe.seed)
    model = build_model(recipe.model, spec, splits.num_classes).to(device)
    if text:
        model = prepare_text_model(model, cfg)
    out = run.stage_dir("train")
    store = CheckpointStore(out / "checkpoints", cfg.checkpoint, checkpoint_key(recipe))
    resume = store.latest()
    history_path = out / "history.jsonl"
    if main:
        if resume is None:
            store.clear()
        atomic_write(history_path, "".join(json.dumps(r) + "\n"
                                           for r in (resume.history if resume else [])))

    with _progress(cfg.epochs, enabled=main) as (progress, task):
        def on_epoch(row: dict) -> None:
            if main:
                with history_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            progress.update(task, advance=1, status=f"val acc {row['val_accuracy']:.4f} "
                                                    f"loss {row['val_loss']:.4f}")

        augment = build_augmenter([] if text else recipe.preprocess.augment, norm,
                                  splits.num_classes, shape, splits.x["train"], recipe.seed)
        train_xy = tensors(*fit_on)
        lengths = token_lengths(train_xy[0]) if text and cfg.length_bucketing else None
        result = fit(model, train_xy, tensors("val"), splits.info["labels"], cfg,
                     recipe.seed, on_epoch, checkpoints=store if main else None, resume=resume,
                     augment=augment, lengths=lengths)
    summary = {"best_epoch": result.best_epoch, "best_value": result.best_value,
               "metric": cfg.early_stopping.metric, "epochs_run": len(result.history),
               "stopped_early": result.stopped_early, "resumed_from": result.resumed_from,
               "processes": world_size(), "fit_on": list(fit_on),
               "seconds": sum(r["seconds"] for r in result.history)}
    if main and text:  # train/model/ (HF folder, LoRA merged) + model.json, as docs/text.md
        save_text_run(out, model, splits.info["labels"], recipe)
    elif main:
        state = {k: v.detach().cpu().contiguous() for k, v in result.best_state.items()}
        atomic_write(out / "model.safetensors", save(state))  # save_file would make it 0600
        write_json(out / "model.json", model_spec(recipe.model, spec, splits.num_classes))
    if main:
        write_json(out / "summary.json", summary)
        atomic_write(history_path, "".join(json.dumps(r) + "\n" for r in result.history))
    return summary


class _progress:
    """A rich progress bar over epochs, silent when stdout is not a terminal."""

    def __init__(self, epochs: int, enabled: bool = True):
        from rich.console import Console

        console = Console()
        self.progress = Progress(TextColumn("train"), BarColumn(), TextColumn("{task.completed}/"
                                 "{task.total} epochs"), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn(), console=console,
                                 disable=not (enabled and console.is_terminal))
        self.epochs = epochs

    def __enter__(self):
        self.progress.__enter__()
        return self.progress, self.progress.add_task("train", total=self.epochs, status="")

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)
