"""The tune stage: run (or join, or resume) an Optuna study, then record the best configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from danlu import track
from danlu.errors import DanluError, RecipeError
from danlu.runs import Run, StageResult, atomic_write, write_json
from danlu.threads import child_env
from danlu.tune.apply import tuned_recipe
from danlu.tune.config import TuneConfig
from danlu.tune.results import best_record, trial_rows, write_plots
from danlu.tune.space import check_space
from danlu.tune.study import FINISHED, open_study, public_url, recover_stale, storage_url, study_name

__all__ = ["optimize", "tune"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def tune(run: Run, cfg: TuneConfig) -> StageResult:
    """Fill the study up to cfg.trials finished trials; write tune/trials.jsonl, best.json, plots."""
    check_space(run.recipe)
    out = run.stage_dir("tune")
    url = storage_url(run, cfg)
    write_json(out / "study.json", {"storage": public_url(url), "study": study_name(run, cfg),
                                    "dashboard": f"optuna-dashboard {public_url(url)}"})
    # Create the study once, before any worker joins; trials a dead process left running are
    # failed and queued again now, while no worker of this stage runs.
    recover_stale(open_study(run, cfg, run.recipe.seed), cfg, log=_log)
    started = time.perf_counter()
    tracked = track.tracker(run)  # opened (the MLflow run made) before any worker starts
    if cfg.workers == 1:
        optimize(run, cfg, worker=0, tracked=tracked)
    else:
        _run_workers(run, cfg)
    study = open_study(run, cfg, run.recipe.seed)
    rows = trial_rows(study)
    atomic_write(out / "trials.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    best = best_record(study, cfg, public_url(url))
    best["seconds"] = time.perf_counter() - started
    write_json(out / "best.json", best)
    atomic_write(out / "recipe.yaml", tuned_recipe(run).dump())
    plots = write_plots(study, cfg, out)
    with tracked:  # tags, not params: a resumed study may find another best
        tracked.set_tags({"danlu.tune.best_trial": best["trial"],
                          **{f"danlu.tune.best.{k}": v for k, v in best["overrides"].items()}})
    t = best["trials"]
    metrics = {"best_trial": best["trial"], "best_values": best["values"],
               "finished": t["finished"], "complete": t.get("complete", 0),
               "pruned": t.get("pruned", 0), "failed": t.get("fail", 0),
               "epochs_total": best["epochs_total"]}
    return StageResult(paths={"best": "tune/best.json", "trials": "tune/trials.jsonl",
                              "recipe": "tune/recipe.yaml", **plots}, metrics=metrics)


def optimize(run: Run, cfg: TuneConfig, worker: int = 0, tracked: track.Tracker | None = None
             ) -> None:
    """One worker: run trials until the study holds cfg.trials finished ones (Optuna also fails
    stale trials of dead workers before each new trial). Each trial is a child run of the run
    folder's tracker (`tracked`, else opened here)."""
    from danlu.tune.objective import make_objective

    study = open_study(run, cfg, run.recipe.seed, worker)
    if _finished(study) >= cfg.trials and not _waiting(study):
        return
    failures = []

    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        values = ", ".join(f"{v:.4f}" for v in trial.values or [])
        extra = f" {trial.user_attrs.get('epochs', 0)} epochs"
        if trial.state == TrialState.FAIL:
            failures.append(trial.number)
            extra += f" ({trial.user_attrs.get('error', 'see the traceback above')})"
        _log(f"tune[{worker}]: trial {trial.number} {trial.state.name.lower()} {values}{extra}"
             f" | {_finished(study)}/{cfg.trials} finished")
        if len(failures) > max(3, cfg.trials):  # every trial fails: stop, do not loop forever
            study.stop()

    timeout = cfg.timeout_minutes * 60 if cfg.timeout_minutes else None
    with tracked or track.tracker(run) as t:
        study.optimize(make_objective(run, cfg, worker, t), timeout=timeout, catch=(RecipeError,),
                       callbacks=[MaxTrialsCallback(cfg.trials, states=FINISHED), report])


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _waiting(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _run_workers(run: Run, cfg: TuneConfig) -> None:
    """cfg.workers local processes on one study (`python -m danlu.tune.worker RUN INDEX`)."""
    logs = [run.path("tune", f"worker-{i}.log") for i in range(cfg.workers)]
    # Each worker gets cores // workers threads (danlu.threads), so N workers never oversubscribe.
    env = {**child_env(cfg.workers), "PYTHONPATH": os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")) if p)}
    procs = []
    try:
        for i, log in enumerate(logs):
            with log.open("w") as f:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "danlu.tune.worker", str(run.dir), str(i)],
                    stdout=f, stderr=subprocess.STDOUT, env=env))
        _log(f"tune: {cfg.workers} workers started (logs: {run.path('tune')}/worker-*.log)")
        codes = [p.wait() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        i, code = bad[0]
        tail = logs[i].read_text()[-2000:]
        raise DanluError(f"tune worker {i} exited with code {code}:\n{tail}")
