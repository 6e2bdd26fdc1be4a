"""`python -m danlu.tune.worker RUN_DIR INDEX`: one local worker process of a run's study."""

from __future__ import annotations

import sys

from danlu.runs import Run
from danlu.tune.stage import optimize


def main(argv: list[str]) -> int:
    run_dir, index = argv
    run = Run.open(run_dir)
    optimize(run, run.recipe.tune, worker=int(index))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
