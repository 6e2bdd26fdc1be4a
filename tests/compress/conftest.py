"""Shared fixtures: a small real digits run (8 epochs), its model and compress context. Every row
compress writes is recorded (the session's compressed text run, tests/conftest.py
`text_compressed`, records its rows too), so a test can check that one function made the rows of
every model family."""

from __future__ import annotations

import contextlib
import shutil

import pytest

FAST = {"latency": {"runs": 10, "warmup": 2}}
# Every (variant name, family, row) that danlu.compress.pareto.row made in this session.
ROWS: list[tuple[str, str, dict]] = []


@contextlib.contextmanager
def recording_rows():
    """Wrap the stage's `row` so each call is recorded (the real function still computes it)."""
    import danlu.compress.stage as stage

    real = stage.row

    def spy(b, m, gates, baseline_b32_ms):
        out = real(b, m, gates, baseline_b32_ms)
        ROWS.append((b.name, b.family.name, out))
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stage, "row", spy)
        yield


def copy_run(src, dst):
    """A run folder to compress (compression writes into it), without training checkpoints."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


@pytest.fixture(scope="session")
def teacher(small_run):
    """The small run's trained model folder, loaded (family, config, features, head, net)."""
    from danlu.models.load import load_model

    return load_model(small_run.run_dir / "train" / "model")


@pytest.fixture(scope="session")
def ctx(small_run, teacher):
    """What variants of the small run are built with; its baseline package is the run's own."""
    from danlu.compress.config import CompressConfig
    from danlu.compress.context import Context
    from danlu.data.stage import load_splits
    from danlu.runs import Run

    run = Run.open(small_run.run_dir)
    return Context(run, CompressConfig(variants=[]), load_splits(run), teacher.features,
                   teacher.head, teacher.family, small_run.run_dir / "package")
