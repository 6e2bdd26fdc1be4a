"""Optuna plumbing: storage (with heartbeats), sampler, pruner, the study, stale trials."""

from __future__ import annotations

import time
import warnings
from datetime import datetime, timedelta
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from danlu.errors import RecipeError
from danlu.runs import Run
from danlu.tune.config import TuneConfig
from danlu.tune.space import grid_space

__all__ = ["FINISHED", "make_pruner", "make_sampler", "open_study", "public_url", "recover_stale",
           "storage_url", "study_name"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A trial whose process died is retried this many times at most (then it stays failed).
MAX_RETRY = 3


def storage_url(run: Run, cfg: TuneConfig) -> str:
    """The study's storage: the recipe's URL, else a SQLite file in the run folder."""
    if cfg.storage:
        return cfg.storage
    return f"sqlite:///{run.stage_dir('tune').resolve() / 'study.db'}"


def study_name(run: Run, cfg: TuneConfig) -> str:
    return cfg.study or run.dir.name


def public_url(url: str) -> str:
    """The URL with any password hidden (for best.json and logs)."""
    if url.startswith("journal:"):
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _with_driver(url: str) -> str:
    """postgresql:// means psycopg (v3) to SQLAlchemy 2.1; use psycopg2 when only it is installed."""
    if url.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _storage(url: str, cfg: TuneConfig) -> optuna.storages.BaseStorage:
    if url.startswith("journal:"):
        # Optuna's journal file: an append-only log many processes share (no heartbeat).
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers write one SQLite file: wait for the lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    # Workers starting together race to create the tables: the loser retries (it then finds them).
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    _with_driver(url), engine_kwargs=engine_kwargs,
                    heartbeat_interval=cfg.heartbeat_seconds, grace_period=2 * cfg.heartbeat_seconds,
                    # Optuna 5's name for what Optuna < 4.9 called failed_trial_callback=
                    # RetryFailedTrialCallback (deprecated there, removed in 6).
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY))
            if url.startswith("sqlite"):
                _write_locked_transactions(storage.engine)
            return storage
        except Exception as e:  # sqlalchemy raises many kinds; the URL is what the user can fix
            error = e
            time.sleep(0.5 * (attempt + 1))
    raise RecipeError("tune.storage", got=public_url(url),
                      expected=f"an Optuna storage URL that opens ({type(error).__name__}: {error})",
                      hint="e.g. sqlite:///study.db, postgresql://user:pw@host/db, "
                           "journal:/path/study.log")


def _write_locked_transactions(engine: Any) -> None:
    """Every SQLite transaction takes the write lock when it begins (BEGIN IMMEDIATE).

    Optuna pops a queued trial (a retry of a dead worker's trial) by reading it WAITING and then
    setting it RUNNING, with SELECT ... FOR UPDATE, which SQLite ignores: two local workers could
    both read it WAITING and both run it, and the second to finish then fails ("Cannot tell a
    COMPLETE trial"). Transactions that hold the lock from their first read make the pop atomic;
    they are short (a trial's bookkeeping), and the 60 s busy timeout lets the others wait."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 issues no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners: closed, reopened with them


def make_sampler(cfg: TuneConfig, seed: int, workers: int = 1) -> optuna.samplers.BaseSampler:
    """Optuna's sampler named by tune.sampler."""
    with warnings.catch_warnings():  # multivariate/group TPE and GP are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _sampler(cfg, seed, workers)


def _sampler(cfg: TuneConfig, seed: int, workers: int) -> optuna.samplers.BaseSampler:
    s = optuna.samplers
    startup = cfg.startup_trials
    if cfg.sampler == "grid":
        return s.GridSampler(grid_space(cfg.space), seed=seed)
    if cfg.sampler == "random":
        return s.RandomSampler(seed=seed)
    if cfg.sampler == "tpe":
        # multivariate + group model conditional spaces jointly (Falkner et al. 2018);
        # constant_liar keeps parallel workers from proposing the same point.
        return s.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, group=True,
                            constant_liar=workers > 1)
    if cfg.sampler == "gp":
        return s.GPSampler(seed=seed, n_startup_trials=startup)
    if cfg.sampler == "cmaes":
        # CMA-ES models floats and ints; categorical keys are drawn at random beside it.
        return s.CmaEsSampler(seed=seed, n_startup_trials=startup, warn_independent_sampling=False)
    return s.NSGAIISampler(seed=seed, population_size=max(4, startup))


def make_pruner(cfg: TuneConfig) -> optuna.pruners.BasePruner:
    p = cfg.pruner
    if p.name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials,
                                           n_warmup_steps=p.warmup_epochs)
    if p.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, p.warmup_epochs))
    return optuna.pruners.NopPruner()


def open_study(run: Run, cfg: TuneConfig, seed: int, worker: int = 0) -> optuna.Study:
    """Create the study, or join it when the storage already holds one of that name."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage_url(run, cfg)
    storage = _storage(url, cfg)
    kwargs: dict[str, Any] = {"storage": storage, "study_name": study_name(run, cfg),
                              "load_if_exists": True, "pruner": make_pruner(cfg),
                              "directions": [d for _, d in cfg.goals]}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(), **kwargs)
    if [d.name.lower() for d in study.directions] != kwargs["directions"]:
        raise RecipeError("tune.objective", got=kwargs["directions"],
                          expected=f"the directions of the existing study {kwargs['study_name']!r}"
                                   f" ({[d.name.lower() for d in study.directions]})",
                          hint="use another --study name")
    # The sampler's seed moves with the worker and the trials already run, so a resumed or
    # extra worker does not replay the draws of the first.
    study.sampler = make_sampler(cfg, seed + 1000 * worker + len(study.trials), cfg.workers)
    return study


def recover_stale(study: optuna.Study, cfg: TuneConfig, log=print) -> int:
    """Mark trials whose worker died (no heartbeat for the grace period) failed; each is retried.

    Runs before this stage's workers start. Trials of live workers elsewhere keep beating and
    are left alone; this waits at most a grace period plus a beat, only when some trial runs.
    """
    if not is_heartbeat_enabled(study._storage):
        return 0
    deadline = time.monotonic() + 2 * cfg.heartbeat_seconds + cfg.heartbeat_seconds + 1
    failed = 0
    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    if running:
        log(f"tune: trials {running} are marked running; waiting up to "
            f"{deadline - time.monotonic():.0f} s for their heartbeats")
    while running and time.monotonic() < deadline:
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        failed += len(after - before)
        running = [t.number for t in study.get_trials(deepcopy=False,
                                                      states=(TrialState.RUNNING,))]
        if running:
            time.sleep(0.5)
    failed += _fail_never_beaten(study, cfg)
    if failed:
        log(f"tune: {failed} trial(s) of a dead worker marked failed and queued again")
    return failed


def _fail_never_beaten(study: optuna.Study, cfg: TuneConfig) -> int:
    """Fail (and retry) running trials that never wrote a heartbeat within the grace period.

    Optuna's stale check skips a trial without a heartbeat row: a worker killed between
    creating a trial and its first beat (a few ms) would leave it running forever. A live
    worker beats as the trial starts, so no beat after the grace period means a dead one.
    """
    from optuna.storages._rdb import models

    rdb = getattr(study._storage, "_backend", study._storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        return 0
    old = datetime.now() - timedelta(seconds=2 * cfg.heartbeat_seconds)  # optuna stores local time
    running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.datetime_start and t.datetime_start < old]
    if not running:
        return 0
    session = rdb.scoped_session()
    try:
        beaten = {trial_id for (trial_id,) in session.query(models.TrialHeartbeatModel.trial_id)
                  .filter(models.TrialHeartbeatModel.trial_id.in_([t._trial_id for t in running]))}
    finally:
        session.close()
    callback = rdb.get_heartbeat_stale_trial_callback()
    failed = 0
    for t in running:
        if t._trial_id in beaten:
            continue
        try:
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        failed += 1
        if callback is not None:
            callback(study, study._storage.get_trial(t._trial_id))
    return failed
