"""Multi-process training with torch.distributed (DDP), launched by torchrun.

`train.nproc: N` (or `danlu train ... --nproc N`) makes the train stage start
`python -m torch.distributed.run --standalone --nproc_per_node N -m danlu.train.rank RUN`
and wait. Each rank trains on its share of every global batch (the rows a DistributedSampler
would give it), DDP averages the gradients, the training loss is summed across ranks, and
only rank 0 writes files. Multi-node: run the same module under torchrun's rendezvous
options on every node (docs/training.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from danlu.errors import DanluError
from danlu.threads import child_env

__all__ = ["all_sum", "is_main", "launch", "rank", "shard", "world_size", "wrap"]


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def wrap(model: nn.Module) -> nn.Module:
    """DistributedDataParallel around the model when running under torchrun, else the model."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    cuda = next(model.parameters()).device.type == "cuda"
    return DistributedDataParallel(model, device_ids=[torch.cuda.current_device()] if cuda else None)


def shard(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's rows of a global batch (every world_size-th, as DistributedSampler deals
    them) and the weight that makes DDP's average of rank means equal the global mean."""
    w = world_size()
    if w == 1 or len(batch) < w:  # a tail smaller than the world: every rank takes it whole
        return batch, 1.0
    mine = batch[rank()::w]
    return mine, w * len(mine) / len(batch)


def all_sum(*values: float) -> list[float]:
    """Each value summed over all ranks (unchanged in a single process)."""
    if world_size() == 1:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def launch(run_dir: Path, nproc: int) -> None:
    """Run the train stage of `run_dir` in `nproc` processes on this machine and wait."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "danlu.train.rank", str(run_dir)]
    # Ranks split the cores (danlu.threads): torchrun would give each one thread, or all of them.
    proc = subprocess.run(cmd, check=False, env=child_env(nproc))
    if proc.returncode != 0:
        raise DanluError(f"distributed training failed (torchrun exit code {proc.returncode}); "
                         "each rank's error is printed above")
