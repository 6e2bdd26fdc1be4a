"""`python -m danlu.tune.worker RUN_DIR INDEX`: one local worker process of a run's study.

The parent (tune stage) started it with its share of the cores in the environment
(danlu.threads.child_env), read by torch and numpy as they load below."""

from __future__ import annotations

import sys

from danlu.runs import Run
from danlu.threads import apply_torch
from danlu.tune.stage import optimize


def main(argv: list[str]) -> int:
    run_dir, index = argv
    apply_torch()
    run = Run.open(run_dir)
    optimize(run, run.recipe.tune, worker=int(index))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
