"""Multi-process training with torch.distributed (DDP), launched by torchrun.

`train.nproc: N` (or `danlu train ... --nproc N`) makes the train stage start
`python -m torch.distributed.run --standalone --nproc_per_node N -m danlu.train.rank RUN`
and wait. Each rank trains on its share of every global batch (the rows a DistributedSampler
would give it), DDP averages the gradients, the training loss is summed across ranks, and
only rank 0 writes files.

Across machines (`danlu train ... --nnodes N --node-rank R --master HOST:PORT`) every machine
runs its own data stage into its own run folder and then torchrun's static rendezvous: node R's
ranks are R*P .. R*P+P-1, so global rank 0 -- the only writer -- is on node 0. Before the first
step the ranks check that they hold the same recipe and training data (`agree`) and take node
0's checkpoint to resume from (`shared_checkpoint`), since only node 0's disk has one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from danlu.errors import DanluError
from danlu.threads import child_env
from danlu.train.nodes import ONE_NODE, Nodes

__all__ = ["agree", "all_sum", "data_fingerprint", "is_main", "launch", "rank", "shard",
           "shared_checkpoint", "world_size", "wrap"]


def _device() -> torch.device:
    """Where collectives' tensors live: nccl moves CUDA tensors only, gloo CPU ones."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


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

    t = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return t.cpu().tolist()


def data_fingerprint(splits: Any, names: tuple[str, ...]) -> str:
    """sha256 of what training reads from the data stage: the fitted features and target, and
    per split the source row numbers, labels and feature values (danlu.data.stage.Splits)."""
    import numpy as np

    h = hashlib.sha256(json.dumps([splits.described, splits.target], sort_keys=True,
                                  default=str).encode())
    for s in names:
        h.update(s.encode())
        h.update(np.ascontiguousarray(splits.rows[s]).tobytes())
        h.update(np.ascontiguousarray(splits.y[s]).tobytes())
        for k in sorted(splits.values[s]):
            v = splits.values[s][k]
            h.update("\x1f".join(map(str, v)).encode() if v.dtype == object
                     else np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def agree(checks: dict[str, tuple[str, str]]) -> None:
    """Fail on every rank when a rank's value differs from rank 0's. checks: name -> (this
    rank's value, what to tell the user). A no-op in one process."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    node = int(os.environ.get("GROUP_RANK", 0))  # torchrun's node rank
    # the first 63 bits of each value's sha256: a collision is as likely as for the digest
    mine = torch.tensor([node, *(int(hashlib.sha256(v.encode()).hexdigest()[:15], 16)
                                 for v, _ in checks.values())], dtype=torch.int64, device=_device())
    every = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(every, mine)
    for i, (_, fix) in enumerate(checks.values(), start=1):
        odd = sorted({int(t[0]) for t in every if t[i] != every[0][i]})
        if odd:
            raise DanluError(f"{fix} (node {', '.join(map(str, odd))} differs from node 0)")


def _broadcast_bytes(blobs: list[bytes]) -> list[bytes]:
    """Rank 0's list of byte strings on every rank (raw bytes over the process group; no pickle)."""
    import torch.distributed as dist

    dev = _device()
    count = torch.tensor([len(blobs)], dtype=torch.int64, device=dev)
    dist.broadcast(count, 0)
    n = int(count)
    sizes = torch.tensor([len(b) for b in blobs] if is_main() else [0] * n, dtype=torch.int64,
                         device=dev)
    if n:
        dist.broadcast(sizes, 0)
    total = int(sizes.sum()) if n else 0
    if not total:
        return [b""] * n
    data = (torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8).to(dev) if is_main()
            else torch.empty(total, dtype=torch.uint8, device=dev))
    dist.broadcast(data, 0)
    raw, out, at = data.cpu().numpy().tobytes(), [], 0
    for size in sizes.tolist():
        out.append(raw[at:at + size])
        at += size
    return out


def shared_checkpoint(store: Any) -> Any:
    """Rank 0's latest checkpoint (a danlu.train.checkpoint.Checkpoint, or None), on every rank:
    on separate machines only node 0's disk holds checkpoints (rank 0 writes them)."""
    if world_size() == 1:
        return store.latest()
    ckpt = store.latest() if is_main() else None
    blobs = [] if ckpt is None else [ckpt.path.name.encode(), ckpt.path.read_bytes(),
                                     ckpt.path.with_suffix(".safetensors").read_bytes()]
    blobs = _broadcast_bytes(blobs)
    if is_main() or not blobs:
        return ckpt
    with tempfile.TemporaryDirectory(prefix="danlu-ckpt-") as d:
        path = Path(d) / blobs[0].decode()
        path.write_bytes(blobs[1])
        path.with_suffix(".safetensors").write_bytes(blobs[2])
        return store.read(path)  # checksums verified; tensors loaded into memory


def launch(run_dir: Path, nproc: int, nodes: Nodes = ONE_NODE) -> None:
    """Run the train stage of `run_dir` in `nproc` processes on this machine and wait; with
    nodes.count > 1, as node nodes.rank of a torchrun static rendezvous at nodes.master."""
    if nodes.count == 1:
        where = ["--standalone"]
    else:  # static: node ranks as given (c10d would number nodes by arrival)
        where = ["--rdzv_backend=static", f"--nnodes={nodes.count}",
                 f"--node_rank={nodes.rank}", f"--master_addr={nodes.host}",
                 f"--master_port={nodes.port}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc_per_node={nproc}",
           "-m", "danlu.train.rank", str(run_dir)]
    # Ranks split the cores (danlu.threads): torchrun would give each one thread, or all of them.
    proc = subprocess.run(cmd, check=False, env=child_env(nproc))
    if proc.returncode != 0:
        raise DanluError(f"distributed training failed (torchrun exit code {proc.returncode}); "
                         "each rank's error is printed above")
