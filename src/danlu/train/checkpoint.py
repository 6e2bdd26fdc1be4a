"""Training checkpoints on disk: safetensors + JSON, never pickle. CheckpointStore/Checkpointer
save and restore training mid-way for an exact resume (a finished model is a model folder:
danlu.models.load)."""

from __future__ import annotations

import hashlib
import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.runs import atomic_write, write_json
from danlu.train.config import CheckpointConfig
from danlu.train.precision import Precision
from danlu.train.schedules import Schedule
from danlu.train.state import LoopState

__all__ = ["Checkpoint", "CheckpointStore", "CheckpointWarning", "Checkpointer"]


# ---- training checkpoints: exact resume ----------------------------------------------------
# A checkpoint is two files named after the optimizer update it was taken at:
#   step-00000120.safetensors  model, best-so-far weights, optimizer tensors, RNG states
#   step-00000120.json         loop position and history, optimizer hyper-parameters, schedule,
#                              grad scaler, python/numpy RNG, and the sha256 of both parts.
# The JSON is written last (each file atomically: temp, fsync, rename), so a checkpoint
# without its JSON is incomplete; a checksum mismatch marks it corrupt, and the previous
# one is used with a warning.

FORMAT = 1


class CheckpointWarning(UserWarning):
    """A checkpoint could not be used (corrupt, truncated, or from another recipe)."""


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    body: dict[str, Any]

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.body["loop"]["history"]


class CheckpointStore:
    """The checkpoints folder of one training: when to save, saving, pruning, finding the last."""

    def __init__(self, folder: Path | None, cfg: CheckpointConfig, key: str = ""):
        self.folder, self.cfg, self.key = (Path(folder) if folder else None), cfg, key

    def due(self, state: LoopState, at_epoch_end: bool) -> bool:
        if self.folder is None:
            return False
        if at_epoch_end:
            return bool(self.cfg.every_epochs) and state.epoch % self.cfg.every_epochs == 0
        return bool(self.cfg.every_steps) and state.update % self.cfg.every_steps == 0

    def paths(self) -> list[Path]:
        """Complete checkpoints (their JSON exists), oldest first."""
        if self.folder is None or not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("step-*.json"))

    def save(self, tensors: dict[str, torch.Tensor], body: dict[str, Any], update: int) -> Path:
        from safetensors.torch import save

        blob = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        stem = self.folder / f"step-{update:08d}"
        atomic_write(stem.with_suffix(".safetensors"), blob)
        body = {**body, "format": FORMAT, "key": self.key,
                "tensors_sha256": hashlib.sha256(blob).hexdigest()}
        write_json(stem.with_suffix(".json"), {"sha256": _digest(body), "body": body})
        for old in self.paths()[:-self.cfg.keep_last]:
            old.with_suffix(".safetensors").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        return stem.with_suffix(".json")

    def clear(self) -> None:
        """Delete every checkpoint (a fresh start must not leave older ones to resume from)."""
        if self.folder is not None and self.folder.is_dir():
            for p in self.folder.glob("step-*"):
                p.unlink()

    def latest(self) -> Checkpoint | None:
        """The newest intact checkpoint made with this store's key; warns about skipped ones."""
        for path in reversed(self.paths()):
            try:
                ckpt = self.read(path)
            except (OSError, ValueError, KeyError) as e:
                warnings.warn(f"checkpoint {path.name} is unusable ({e}); trying the previous one",
                              CheckpointWarning, stacklevel=2)
                continue
            if ckpt.body["key"] != self.key:
                warnings.warn(f"checkpoint {path.name} was made by a different recipe "
                              "(model/train/data changed); training starts afresh",
                              CheckpointWarning, stacklevel=2)
                return None
            return ckpt
        return None

    @staticmethod
    def read(path: Path) -> Checkpoint:
        """One checkpoint, verified against its checksums (ValueError when they differ)."""
        from safetensors.torch import load

        doc = json.loads(Path(path).read_text())
        body = doc["body"]
        if _digest(body) != doc["sha256"]:
            raise ValueError("checksum of its JSON part does not match")
        blob = Path(path).with_suffix(".safetensors").read_bytes()
        if hashlib.sha256(blob).hexdigest() != body["tensors_sha256"]:
            raise ValueError("checksum of its tensors does not match (truncated or corrupt)")
        return Checkpoint(Path(path), load(blob), body)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class Checkpointer:
    """Saves and restores everything fit() needs for an exact resume."""

    def __init__(self, store: CheckpointStore | None, model: nn.Module,
                 optimizer: torch.optim.Optimizer, schedule: Schedule, precision: Precision):
        self.store = store
        self.model, self.optimizer, self.schedule, self.precision = model, optimizer, schedule, precision

    def after_update(self, state: LoopState) -> None:
        if self.store and self.store.due(state, at_epoch_end=False):
            self.save(state)

    def after_epoch(self, state: LoopState) -> None:
        if self.store and self.store.due(state, at_epoch_end=True):
            self.save(state)

    def save(self, state: LoopState) -> Path:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {f"best.{k}": v for k, v in state.best_state.items()}
        opt = self.optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, entry in opt["state"].items():
            for name, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{pid}.{name}"] = value
                else:
                    scalars.setdefault(str(pid), {})[name] = value
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.order"] = state.gen.get_state()
        if state.order_rng is not None:
            tensors["rng.order_epoch"] = state.order_rng
        if torch.cuda.is_available():
            tensors |= {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
        np_state = np.random.get_state()
        body = {
            "loop": state.scalars(),
            "optimizer": {"param_groups": opt["param_groups"], "state": scalars},
            "schedule": self.schedule.state_dict(),
            "scaler": self.precision.state_dict(),
            "rng": {"python": random.getstate(),
                    "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]},
        }
        return self.store.save(tensors, body, state.update)

    def restore(self, ckpt: Checkpoint | None, state: LoopState) -> LoopState:
        """Load `ckpt` into the model, optimizer, schedule, scaler, RNGs and `state`."""
        if ckpt is None:
            return state
        t, body = ckpt.tensors, ckpt.body
        self.model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        opt_state: dict[int, dict[str, Any]] = {}
        for k, v in t.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = v
        for pid, entry in body["optimizer"]["state"].items():
            opt_state.setdefault(int(pid), {}).update(entry)
        groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()}
                  for g in body["optimizer"]["param_groups"]]
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        self.schedule.load_state_dict(body["schedule"])
        self.precision.load_state_dict(body["scaler"])
        for k, v in body["loop"].items():
            setattr(state, k, v)
        state.best_state = {k[5:]: v.to(_device(self.model)) for k, v in t.items()
                            if k.startswith("best.")}
        state.gen.set_state(t["rng.order"])
        state.order_rng = t.get("rng.order_epoch")
        torch.set_rng_state(t["rng.torch"])
        if torch.cuda.is_available():
            cuda = [t[k] for k in sorted(t) if k.startswith("rng.cuda.")]
            if cuda:
                torch.cuda.set_rng_state_all(cuda)
        py = body["rng"]["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        n = body["rng"]["numpy"]
        np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
        return state


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device
