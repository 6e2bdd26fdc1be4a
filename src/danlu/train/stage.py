"""The train stage: build the model from the recipe, fit it, save the best weights."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys

import numpy as np
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from danlu import track
from danlu.data.augment import build_augmenter
from danlu.data.stage import load_splits
from danlu.models.load import save_model
from danlu.runs import Run, StageResult, atomic_write, read_json, write_json
from danlu.train.checkpoint import CheckpointStore
from danlu.train.config import TrainConfig
from danlu.train.distributed import agree, data_fingerprint, is_main, launch, shared_checkpoint, world_size
from danlu.train.inputs import Inputs
from danlu.train.loop import fit, watched_metric
from danlu.train.nodes import ONE_NODE, Nodes

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
    if "torch._inductor.config" in sys.modules:  # a compiled model in this process: tell Inductor
        torch.use_deterministic_algorithms(on, warn_only=True)
    else:
        # torch.use_deterministic_algorithms also imports Inductor (and Dynamo) to set its flag:
        # 4 s on this machine, in every training process. danlu compiles nothing; the kernels'
        # switch is this call, which the public one makes too.
        torch._C._set_deterministic_algorithms(on, warn_only=True)


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


def train(run: Run, cfg: TrainConfig, fit_on: tuple[str, ...] = ("train",),
          nodes: Nodes = ONE_NODE) -> StageResult:
    """Write train/model/ (model.json + the best epoch's weights) and train/history.jsonl.

    Checkpoints go to train/checkpoints/; when one made by the same recipe is there (a crashed
    or killed run), training continues from it exactly. With train.nproc > 1 the training runs
    in that many DDP processes under torchrun; rank 0 writes the files. With nodes.count > 1
    this machine is node nodes.rank of a training across machines: node 0 writes the files,
    the other nodes' run folders keep their data stage only.
    fit_on: the splits trained on; ("train", "val") retrains a tuned configuration on both."""
    if (cfg.nproc > 1 or nodes.count > 1) and world_size() == 1:
        launch(run.dir, cfg.nproc, nodes)
        done = run.path("train", "summary.json")  # written by global rank 0, on node 0
        if nodes.rank != 0 and not done.is_file():  # this node's own run folder: data only
            return StageResult(metrics={"node_rank": nodes.rank, "nodes": nodes.count,
                                        "master": nodes.master, "processes": cfg.nproc})
        summary = read_json(done)  # node 0, or a run folder the nodes share
    else:
        summary = train_here(run, cfg, fit_on)
    return StageResult(paths={"model": "train/model", "history": "train/history.jsonl"},
                       metrics=summary)


def train_here(run: Run, cfg: TrainConfig, fit_on: tuple[str, ...] = ("train",)) -> dict:
    """The train stage in this process (one rank of many under torchrun); returns the summary."""
    recipe = run.recipe
    main = is_main()  # only rank 0 writes files
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    splits = load_splits(run)
    if world_size() > 1:  # every rank must train on the same thing (separate machines, folders)
        agree({"recipe": (checkpoint_key(recipe), "the recipe differs between the nodes: start every "
                          "node with the same recipe file, overrides, --nproc and danlu version"),
               "data": (data_fingerprint(splits, (*fit_on, "val")), "the training data differs "
                        "between the nodes: every node's data stage must read the same source with "
                        "the same danlu/numpy/pyarrow versions, or give the nodes one shared run "
                        "folder")})
    inputs = Inputs(splits, recipe.model, resolve_device(cfg.device))
    set_deterministic(cfg.deterministic)
    seed_everything(recipe.seed)
    model = inputs.family.prepare(inputs.build(), cfg)
    out = run.stage_dir("train") if main else run.path("train")  # other ranks write nothing
    store = CheckpointStore(out / "checkpoints", cfg.checkpoint, checkpoint_key(recipe))
    resume = shared_checkpoint(store)  # rank 0's: other machines have none on their disk
    history_path = out / "history.jsonl"
    if main:
        if resume is None:
            store.clear()
        atomic_write(history_path, "".join(json.dumps(r) + "\n"
                                           for r in (resume.history if resume else [])))

    tracked = track.tracker(run) if main else track.Tracker()  # the recipe's `track:` section
    with _progress(cfg.epochs, enabled=main) as (progress, task), tracked:
        def on_epoch(row: dict) -> None:
            if main:
                with history_path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            tracked.log_epoch(row)
            progress.update(task, advance=1, status=" ".join(
                f"val {k} {row[f'val_{k}']:.4f}" for k in inputs.head.epoch_metrics[::-1]))

        augment = build_augmenter(recipe.preprocess.augment, inputs.features, inputs.head,
                                  recipe.seed)
        lengths = inputs.lengths(*fit_on) if cfg.length_bucketing else None
        result = fit(model, inputs.xy(*fit_on), inputs.xy("val"), inputs.head, cfg,
                     recipe.seed, on_epoch, checkpoints=store if main else None, resume=resume,
                     augment=augment, lengths=lengths)
    summary = {"best_epoch": result.best_epoch, "best_value": result.best_value,
               "metric": watched_metric(cfg, inputs.head), "epochs_run": len(result.history),
               "stopped_early": result.stopped_early, "resumed_from": result.resumed_from,
               "processes": world_size(), "nodes": int(os.environ.get("GROUP_WORLD_SIZE", 1)),
               "fit_on": list(fit_on),
               "seconds": sum(r["seconds"] for r in result.history)}
    if main:  # fit() left the best epoch's weights in the model
        save_model(out / "model", recipe.model, model, inputs.features, inputs.head)
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
