"""Tuning benchmark on digits: how many trials each sampler needs to come within 0.5 pt of the
best validation accuracy a full grid finds, and how many epochs the median pruner saves.

Kept small on purpose (a few minutes on 2 shared cores): a 8/16-channel CNN, 3 epochs per trial
(4 in the pruning part), a 48-point grid, 24-trial budgets, 5 sampler seeds. Every trial trains
with the recipe's fixed seed, so one configuration always scores the same: the grid's best is
an exact target and samplers differ only in what they propose.

    python benchmarks/tuning.py          # results/tuning.json + RESULTS.md rows; ~8 min quiet
        # (728 trials: the grid, 4 samplers x 5 seeds x 24, the pruning arms 2 x 5 x 20)
    python benchmarks/tuning.py --quick  # a check that it runs: 1 seed, a 4-point grid, 3-trial
        # budgets, 1 epoch per trial, 3 pruning trials; a temp folder, RESULTS.md untouched
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna
import torch
from _common import Bench, add_args

from danlu.data.stage import data
from danlu.recipe import load_recipe
from danlu.runs import Run
from danlu.tune.config import TuneConfig
from danlu.tune.objective import make_objective
from danlu.tune.study import make_pruner, make_sampler

HERE = Path(__file__).resolve().parent
RECIPE = HERE.parent / "recipes" / "digits.yaml"
SEEDS = [0, 1, 2, 3, 4]
BUDGET = 24  # trials per sampler run: half the grid
TOLERANCE = 0.005  # "within 0.5 percentage points"
BASE = {"model.channels": [8, 16], "model.hidden": 32, "train.epochs": 3,
        "train.early_stopping.patience": 0, "train.threads": 1}
GRID = {"train.optimizer.lr": {"choice": [0.001, 0.003, 0.01, 0.03]},
        "train.optimizer.name": {"choice": ["adam", "sgd"]},
        "model.dropout": {"choice": [0.0, 0.25, 0.5]},
        "model.channels": {"choice": [[8, 16], [16, 32]]}}
# The same region as ranges, for the samplers that model continuous values.
RANGES = {"train.optimizer.lr": {"log_float": [0.001, 0.03]},
          "train.optimizer.name": {"choice": ["adam", "sgd"]},
          "model.dropout": {"float": [0.0, 0.5]},
          "model.channels": {"choice": [[8, 16], [16, 32]]}}


# --quick: the same code paths at a fraction of the trials (a check that it runs, not a result)
QUICK_GRID = {"train.optimizer.lr": {"choice": [0.003, 0.01]},
              "model.channels": {"choice": [[8, 16], [16, 32]]}}


def make_run(tmp: Path, epochs: int) -> Run:
    recipe = load_recipe(RECIPE, {**BASE, "train.epochs": epochs})
    run = Run.create(recipe, tmp)
    data(run, recipe.data)
    return run


def study(run: Run, cfg: TuneConfig, seed: int, trials: int, pruned: bool = False):
    s = optuna.create_study(direction="maximize", sampler=make_sampler(cfg, seed),
                            pruner=make_pruner(cfg) if pruned else optuna.pruners.NopPruner())
    s.optimize(make_objective(run, cfg), n_trials=trials)
    return s


def trials_to_reach(s: optuna.Study, target: float) -> int | None:
    """1-based index of the first trial whose value is within TOLERANCE of target."""
    for i, t in enumerate(sorted(s.trials, key=lambda t: t.number), 1):
        if t.value is not None and t.value >= target - TOLERANCE - 1e-9:
            return i
    return None


def censored_median(xs: list[int | None], cap: int) -> float:
    """Median where a run that never reached counts as cap + 1 (reported as '>cap' if it wins)."""
    return statistics.median([x if x is not None else cap + 1 for x in xs])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 seed, a 4-point grid, 3-trial budgets, 1 epoch: a check that it runs")
    add_args(ap)
    args = ap.parse_args()
    bench = Bench.start("tuning", args)
    global SEEDS, BUDGET, GRID
    if args.quick:
        SEEDS, BUDGET, GRID = [0], 3, QUICK_GRID
        BASE["train.epochs"] = 1
    n_grid = len(list(itertools.product(*(v["choice"] for v in GRID.values()))))
    prune_trials, prune_epochs = (3, 2) if args.quick else (20, 4)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    out: dict = {"torch_threads": torch.get_num_threads(), "seeds": SEEDS, "budget": BUDGET,
                 "epochs_per_trial": BASE["train.epochs"]}
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), BASE["train.epochs"])
        grid_cfg = TuneConfig(sampler="grid", space=GRID, trials=n_grid)
        full = study(run, grid_cfg, 0, n_grid)
        grid_best = full.best_value
        values = {json.dumps(t.params, sort_keys=True): t.value for t in full.trials}
        print(f"grid: {n_grid} trials, best val accuracy {grid_best:.4f}", file=sys.stderr)
        # The grid in each seed's order: the same values, looked up (the objective is exact).
        grid_reach = []
        for seed in SEEDS:
            order = optuna.create_study(direction="maximize", sampler=make_sampler(grid_cfg, seed))

            def lookup(tr: optuna.Trial) -> float:
                for path, spec in GRID.items():
                    tr.suggest_categorical(path, [json.dumps(c) if isinstance(c, list) else c
                                                  for c in spec["choice"]])
                return values[json.dumps(tr.params, sort_keys=True)]

            order.optimize(lookup, n_trials=n_grid)
            grid_reach.append(trials_to_reach(order, grid_best))
        out["grid"] = {"trials": n_grid, "best": grid_best, "reach": grid_reach}
        for sampler in ("random", "tpe", "gp", "cmaes"):
            reach, best = [], []
            t0 = time.perf_counter()
            for seed in SEEDS:
                cfg = TuneConfig(sampler=sampler, space=RANGES, trials=BUDGET,
                                 startup_trials=min(5, BUDGET))
                s = study(run, cfg, seed, BUDGET)
                reach.append(trials_to_reach(s, grid_best))
                best.append(s.best_value)
            out[sampler] = {"reach": reach, "best": best, "seconds": time.perf_counter() - t0}
            print(f"{sampler}: trials to within 0.5 pt of the grid's best {reach}, "
                  f"best {[round(b, 4) for b in best]}", file=sys.stderr)

    # Pruning: TPE, 20 trials of 4 epochs, with and without the median pruner.
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), prune_epochs)
        arms = {}
        startup = min(5, prune_trials - 1)
        for name, pruned in (("none", False), ("median", True)):
            epochs, best = [], []
            for seed in SEEDS:
                cfg = TuneConfig(sampler="tpe", space=RANGES, trials=prune_trials,
                                 startup_trials=startup,
                                 pruner={"name": "median", "startup_trials": startup,
                                         "warmup_epochs": 1})
                s = study(run, cfg, seed, prune_trials, pruned=pruned)
                epochs.append(sum(t.user_attrs.get("epochs", 0) for t in s.trials))
                best.append(s.best_value)
            arms[name] = {"epochs": epochs, "best": best}
            print(f"pruner {name}: epochs {epochs}, best {[round(b, 4) for b in best]}",
                  file=sys.stderr)
        out["pruning"] = arms
    out["seconds"] = time.perf_counter() - started
    out["pruning_trials"] = prune_trials
    bench.finish()
    bench.save("tuning.json", out)
    write_results_md(bench, out)
    print(f"done in {out['seconds']:.0f} s", file=sys.stderr)
    return 0


def write_results_md(bench: Bench, r: dict) -> None:
    n_grid = r["grid"]["trials"]
    grid_med = censored_median(r["grid"]["reach"], n_grid)
    rows = []
    for sampler in ("tpe", "gp", "cmaes", "random"):
        med = censored_median(r[sampler]["reach"], BUDGET)
        shown = f">{BUDGET}" if med > BUDGET else f"{med:g}"
        epochs = shown if med > BUDGET else f"{med * r['epochs_per_trial']:g}"
        hit = sum(x is not None for x in r[sampler]["reach"])
        rows.append(f"| tuning: {sampler} trials to within 0.5 pt of the full grid's best val acc "
                    f"(median of {len(SEEDS)} seeds, {hit}/{len(SEEDS)} reached in {BUDGET}; "
                    f"{r['epochs_per_trial']} epochs/trial) | {shown} trials "
                    f"({epochs} epochs) | "
                    f"{n_grid} trials (full grid; shuffled grid reaches it after {grid_med:g}) | "
                    f"{min(med, BUDGET + 1) / n_grid:.2f} | {bench.cell()}")
    p = r["pruning"]
    e_none, e_med = statistics.median(p["none"]["epochs"]), statistics.median(p["median"]["epochs"])
    b_none, b_med = statistics.median(p["none"]["best"]), statistics.median(p["median"]["best"])
    rows.append(f"| tuning: epochs for {r['pruning_trials']} TPE trials, median pruner vs none "
                f"(median of {len(SEEDS)} seeds; best val acc {b_med:.4f} vs {b_none:.4f}) | "
                f"{e_med:g} epochs | {e_none:g} epochs | {e_med / e_none:.2f} | {bench.cell()}")
    bench.rows("| tuning:", rows)


if __name__ == "__main__":
    sys.exit(main())
