"""One DDP rank of the train stage: `python -m danlu.train.rank RUN`, started by torchrun
(danlu.train.distributed.launch)."""

from __future__ import annotations

import os
import sys

import torch

from danlu.errors import DanluError
from danlu.runs import Run
from danlu.threads import apply_torch
from danlu.train.stage import train_here

__all__: list[str] = []


def _main(run_dir: str) -> None:
    """One rank: join the process group, run the train stage body, leave."""
    import torch.distributed as dist

    apply_torch()  # this rank's share of the cores, from the environment launch() gave it
    run = Run.open(run_dir)
    if run.recipe.tune is not None and run.recipe.tune.enabled:
        # the stage was handed the tuned recipe (pipeline._after): the ranks train it too
        import dataclasses

        from danlu.tune.apply import tuned_recipe

        run = dataclasses.replace(run, recipe=tuned_recipe(run))
    from danlu.tune.apply import fit_splits

    cfg = run.recipe.train
    cuda = cfg.device in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        train_here(run, cfg, fit_splits(run.recipe))
        # Leave together: a rank tearing gloo down while another still talks to it aborts
        # ("terminate called without an active exception"), seen here about 1 run in 4.
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    try:
        _main(sys.argv[1])
    except DanluError as e:  # one line per rank (the nodes disagree, ...), not a traceback
        print(f"error (rank {os.environ.get('RANK', 0)}): {e}", file=sys.stderr, flush=True)
        sys.exit(1)
