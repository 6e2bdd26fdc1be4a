"""An MLflow run per run folder, through MLflow's own client (no global active run).

RUN/track.json remembers the run's id, so every stage, a tuning worker process or a later
`danlu compress RUN` logs into the same MLflow run; tuning trials and compression variants are
its child runs (tag mlflow.parentRunId)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from danlu.errors import DanluError, RecipeError
from danlu.runs import read_json, write_json
from danlu.track.base import Backend
from danlu.track.config import MlflowConfig

__all__ = ["MlflowBackend", "open_mlflow", "resolve_uri"]

STATE = "track.json"  # in the run folder: {"mlflow": {"uri", "experiment_id", "run_id"}}
DATABASE = "mlflow.db"  # the run folder's own store (sqlite)
ARTIFACTS = "mlartifacts"  # ... and its artifacts
# MLflow's key alphabet (alphanumerics, _ - . space : /) and length; a column named
# "sepal length (cm)" becomes the param data.features.sepal length _cm_.type.
_BAD_KEY = re.compile(r"[^\w\-. :/]")
KEY_CHARS = 250


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", name)[:KEY_CHARS]


def _client(uri: str):
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise DanluError("track.mlflow needs MLflow, which is not installed: "
                         "pip install 'danlu[track]'") from None
    try:
        return MlflowClient(uri)
    except MlflowException as e:
        if "MLFLOW_ALLOW_FILE_STORE" in str(e):
            raise RecipeError("track.mlflow.uri", got=uri,
                              expected="a database or server URI (sqlite:///PATH/mlflow.db, "
                                       "http://HOST:5000, postgresql://...)",
                              hint="MLflow 3 refuses a file store unless "
                                   "MLFLOW_ALLOW_FILE_STORE=true is set") from None
        raise


def resolve_uri(run_dir: Path, cfg: MlflowConfig) -> tuple[str, bool]:
    """The tracking URI and whether it is the run folder's own database: the recipe's
    track.mlflow.uri, else $MLFLOW_TRACKING_URI, else sqlite:///RUN/mlflow.db."""
    uri = cfg.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, False
    return f"sqlite:///{(Path(run_dir) / DATABASE).resolve()}", True


def public_uri(uri: str) -> str:
    """The URI with any password hidden (it is written to track.json)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _experiment(client, name: str, location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=location)


def open_mlflow(run_dir: Path, name: str, cfg: MlflowConfig, params: dict[str, str],
                begin: bool) -> MlflowBackend:
    """The run folder's MLflow run: the one RUN/track.json names, else a new one (experiment
    cfg.experiment or `name`) with `params` logged. With `begin` (the pipeline's start) it is
    marked RUNNING, and a recipe whose logged values changed (a resumed run with overrides;
    MLflow params cannot change) starts a new MLflow run."""
    run_dir = Path(run_dir)
    uri, own = resolve_uri(run_dir, cfg)
    client = _client(uri)
    state_path = run_dir / STATE
    state = (read_json(state_path) if state_path.is_file() else {}).get("mlflow", {})
    run_id = state.get("run_id") if state.get("uri") == public_uri(uri) else None
    if run_id is not None:
        run_id = _reuse(client, run_id, params, begin)
    if run_id is None:
        location = cfg.artifact_location or ((run_dir / ARTIFACTS).resolve().as_uri() if own
                                             else None)
        experiment_id = _experiment(client, cfg.experiment or name, location)
        from danlu import __version__

        created = client.create_run(experiment_id, run_name=run_dir.name, tags={
            "danlu.run_dir": str(run_dir.resolve()), "danlu.version": __version__})
        run_id = created.info.run_id
        backend = MlflowBackend(client, run_id, experiment_id, top=True, artifacts=cfg.artifacts)
        backend.log_params(params)
        write_json(state_path, {"mlflow": {"uri": public_uri(uri), "experiment_id": experiment_id,
                                           "run_id": run_id}})
        return backend
    return MlflowBackend(client, run_id, state["experiment_id"], top=True,
                         artifacts=cfg.artifacts)


def _reuse(client, run_id: str, params: dict[str, str], begin: bool) -> str | None:
    """run_id when that run still exists (and, with `begin`, its logged params agree with
    `params`: new keys are logged, it is marked RUNNING); None to start a new run."""
    from mlflow.exceptions import MlflowException

    try:
        logged = client.get_run(run_id).data.params
    except MlflowException:  # deleted, or another store
        return None
    if not begin:
        return run_id
    params = {_key(k): v for k, v in params.items()}
    if any(k in logged and logged[k] != v for k, v in params.items()):
        return None
    backend = MlflowBackend(client, run_id, "", top=True)
    backend.log_params({k: v for k, v in params.items() if k not in logged})
    client.update_run(run_id, status="RUNNING")
    return run_id


class MlflowBackend(Backend):
    def __init__(self, client: Any, run_id: str, experiment_id: str, top: bool,
                 artifacts: bool = True):
        self.client, self.run_id, self.experiment_id, self.top = client, run_id, experiment_id, top
        self.artifacts = artifacts  # track.mlflow.artifacts

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        if params:
            self.client.log_batch(self.run_id, params=[Param(_key(k), v) for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ms = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(_key(k), v, ms, step)
                                                    for k, v in metrics.items()])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(_key(k), v) for k, v in tags.items()])

    def log_artifacts(self, paths: list[Path]) -> None:
        for p in paths if self.artifacts else ():
            if p.is_dir():
                self.client.log_artifacts(self.run_id, str(p), artifact_path=p.name)
            else:
                self.client.log_artifact(self.run_id, str(p))

    def child(self, name: str, params: dict[str, str], tags: dict[str, str]) -> Backend:
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"mlflow.parentRunId": self.run_id, **tags})
        child = MlflowBackend(self.client, run.info.run_id, self.experiment_id, top=False)
        child.log_params(params)
        return child

    def close(self, status: str | None = None) -> None:
        if not self.top:  # the top run's status is set by `finish` alone
            self.client.set_terminated(self.run_id, status or "FINISHED")

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)
