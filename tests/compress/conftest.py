"""Shared fixtures: a small real digits run (8 epochs), its model and compress context; a copy of
the session's tiny text run compressed once (student + its int8); every row compress writes is
recorded, so a test can check that one function made the rows of every model family."""

from __future__ import annotations

import contextlib
import shutil

import pytest

from tests.conftest import DIGITS

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
def small_run(tmp_path_factory):
    import danlu

    return danlu.run(DIGITS, overrides={"train.epochs": 8, "evaluate.gate": {},
                                        "preprocess.augment": []}, out=tmp_path_factory.mktemp("c-runs"))


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


@pytest.fixture(scope="session")
def text_compressed(text_run, tmp_path_factory):
    """The session's tiny text run (2 MiniLM layers) compressed by `danlu compress`'s function:
    a student keeping the teacher's layer 1 and the student's int8. (run folder, pareto.json)"""
    import json

    from danlu.compress.stage import compress_run

    run_dir = copy_run(text_run.run_dir, tmp_path_factory.mktemp("text-c") / "run")
    variants = ("compress.variants=[{name: student, distill: {student: {arch: transformer, "
                "layers: [1]}, epochs: 1, lr: 0.0001, batch_size: 16}}, "
                "{name: student-int8, from: student, quantize: {mode: dynamic}}]")
    with recording_rows():
        compress_run(run_dir, [variants, "compress.latency.runs=5", "compress.latency.warmup=1",
                               "compress.budget.max_accuracy_drop=1.0",
                               "compress.budget.min_label_agreement=0.0"])
    return run_dir, json.loads((run_dir / "compress" / "pareto.json").read_text())
