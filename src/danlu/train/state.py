"""LoopState: everything fit() carries between batches that a checkpoint must restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from danlu.train.distributed import all_sum

__all__ = ["LoopState", "epoch_batches"]

# Loop fields saved as JSON in a checkpoint (the tensors go to safetensors).
SCALARS = ("epoch", "batch", "update", "loss_sum", "seen", "best", "best_epoch",
           "waited", "stopped_early", "history")


@dataclass
class LoopState:
    """Where training is: `epoch` epochs done, `batch` batches of the next one done."""

    gen: torch.Generator  # the data order; its state at the epoch's start is `order_rng`
    order_rng: torch.Tensor | None = None
    epoch: int = 0
    batch: int = 0
    update: int = 0  # optimizer updates so far
    loss_sum: Any = 0.0  # sum of batch loss * rows this epoch (a tensor while training)
    seen: int = 0
    best: float | None = None
    best_epoch: int = 0
    waited: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def add_batch(self, loss: torch.Tensor, rows: int) -> None:
        self.loss_sum = self.loss_sum + loss.detach() * rows
        self.seen += rows
        self.batch += 1

    def end_epoch(self) -> dict[str, Any]:
        """Mean training loss and rows of the epoch that just ended, summed over all ranks;
        resets the per-epoch counters."""
        loss_sum, seen = all_sum(float(self.loss_sum), self.seen)
        self.epoch, self.batch, self.loss_sum, self.seen = self.epoch + 1, 0, 0.0, 0
        return {"train_loss": loss_sum / max(1, seen), "train_rows": int(seen)}

    def scalars(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in SCALARS}
        d["loss_sum"] = float(self.loss_sum)
        return d


def epoch_batches(state: LoopState, rows: int, batch_size: int,
                  lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """This epoch's shuffled batches of row indices. The generator's state at the epoch's start
    is kept, so a run resumed mid-epoch rebuilds the very same order and skips what it did.
    With `lengths`, batches are length-bucketed (see `bucketed`)."""
    if state.batch == 0:
        state.order_rng = state.gen.get_state()
    else:
        state.gen.set_state(state.order_rng)
    perm = torch.randperm(rows, generator=state.gen)
    if lengths is None:
        return perm.split(batch_size)
    return bucketed(perm, lengths, batch_size, state.gen)


# Rows sorted together: 50 batches' worth mixes lengths enough that each batch is nearly
# uniform, while rows still meet different neighbours every epoch ("sortish" sampling,
# as fairseq and fastai do).
BUCKET_BATCHES = 50


def bucketed(perm: torch.Tensor, lengths: torch.Tensor, batch_size: int,
             gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Shuffled rows cut into pools of BUCKET_BATCHES batches, each pool sorted by length and
    split into batches, then the batches shuffled (seeded by `gen`): similar lengths per batch,
    so padding each batch to its longest member wastes little, with a random batch order."""
    lengths = lengths.cpu()
    batches: list[torch.Tensor] = []
    for pool in perm.split(batch_size * BUCKET_BATCHES):
        order = torch.sort(lengths[pool], stable=True).indices
        batches.extend(pool[order].split(batch_size))
    return tuple(batches[i] for i in torch.randperm(len(batches), generator=gen))
