"""TensorBoard event files under RUN/tensorboard/ (a child run: a subfolder, e.g. tune/trial-3)."""

from __future__ import annotations

from pathlib import Path

from danlu.track.base import Backend

__all__ = ["TensorBoardBackend"]


class TensorBoardBackend(Backend):
    """torch's SummaryWriter (which needs the `tensorboard` package), made on the first scalar:
    a stage that logs nothing leaves no empty event file."""

    def __init__(self, logdir: Path):
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (fails early if missing)

        self.logdir = Path(logdir)
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.logdir))
        return self._writer

    def log_params(self, params: dict[str, str]) -> None:
        pass  # the resolved recipe is RUN/recipe.yaml; TensorBoard's text tab would repeat it

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()  # TensorBoard shows each epoch as it ends

    def child(self, name: str, params: dict[str, str], tags: dict[str, str]) -> Backend:
        return TensorBoardBackend(self.logdir / name)

    def close(self, status: str | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self, status: str) -> None:
        self.close()
