"""Recipe section `track`: TensorBoard event files and an MLflow run (pydantic only: loading a
recipe imports neither library)."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from danlu.data.config import Section

__all__ = ["MlflowConfig", "TrackConfig"]


class MlflowConfig(Section):
    # Where runs are recorded; None = $MLFLOW_TRACKING_URI when set, else a SQLite database in
    # the run folder (sqlite:///RUN/mlflow.db). Any tracking URI works (http://server:5000,
    # sqlite:///path, postgresql://...). MLflow 3 refuses a file store (./mlruns) unless
    # MLFLOW_ALLOW_FILE_STORE=true, so the run folder's store is a database.
    uri: str | None = None
    # The MLflow experiment the run goes into; None = the recipe's name.
    experiment: str | None = None
    # Where an experiment danlu creates keeps its artifacts; None = RUN/mlartifacts for the run
    # folder's own database, the tracking server's default for any other URI.
    artifact_location: str | None = None
    # Log report.html and package/ as the run's artifacts (false: params and metrics only; a
    # text model's package is ~100 MB).
    artifacts: bool = True


class TrackConfig(Section):
    # Event files under RUN/tensorboard/ (`tensorboard --logdir RUN/tensorboard`).
    tensorboard: bool = False
    # An MLflow run per run folder (tuning trials and compression variants are its child runs);
    # None/false = off, true = on with the defaults below.
    mlflow: MlflowConfig | None = None

    @field_validator("mlflow", mode="before")
    @classmethod
    def _switch(cls, v: Any) -> Any:
        if v is True:
            return {}
        if v is False:
            return None
        return v

    @property
    def enabled(self) -> bool:
        return self.tensorboard or self.mlflow is not None
