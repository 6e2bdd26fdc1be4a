"""Shared fixtures: one real digits run (the shipped recipe) reused by many tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "recipes" / "digits.yaml"

# Two threads, as on the CI machine: tests must not depend on a bigger box.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# The suite is many processes on 2 cores at once (pytest beside the servers and CLI runs it
# starts): idle OpenMP threads sleep at once, as a user would set for such a job. danlu's
# processes keep it (a user's OMP_WAIT_POLICY wins over danlu.threads' short spin). Measured:
# the clean-clone suite took 12 min 47 s with the children passive, 17 min 46 s with the spin
# (partly a slower machine that hour), 11 min 34 s with this setting (2026-11-30).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The shipped digits recipe run end to end once (about 10 s here)."""
    import danlu

    out = tmp_path_factory.mktemp("runs")
    return danlu.run(DIGITS, out=out)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A small real digits run (8 epochs, no augmentation) for the compression tests; a test
    that changes a run compresses a copy of it."""
    import danlu

    return danlu.run(DIGITS, overrides={"train.epochs": 8, "evaluate.gate": {},
                                        "preprocess.augment": []}, out=tmp_path_factory.mktemp("c-runs"))


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    """One tiny real text run, made by danlu's own verbs (data -> train -> evaluate -> export,
    about 25 s here): 2 MiniLM layers fine-tuned on 200 BBC News articles, texts cut to 32
    tokens. Every test that needs a text model, run or package shares it."""
    import danlu
    from tests.textdata import bbc_texts, tiny_text_recipe, write_jsonl

    d = tmp_path_factory.mktemp("text-run")
    src = write_jsonl(d / "bbc.jsonl", *bbc_texts(0, 40))
    return danlu.run(tiny_text_recipe(src), out=d / "runs")


@pytest.fixture(scope="session")
def text_compressed(text_run, tmp_path_factory):
    """A copy of the session's tiny text run compressed by the pipeline's compress stage
    (`danlu.run` resumed with a compress section: data, train, evaluate, export stay cached): a
    student keeping the teacher's layer 1 and the student's int8, every row recorded for
    tests/compress/test_rows.py. (run folder, pareto.json)"""
    import json
    import shutil

    import danlu
    from tests.compress.conftest import recording_rows

    run_dir = tmp_path_factory.mktemp("text-c") / "run"
    shutil.copytree(text_run.run_dir, run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    compress = {"variants": [
        {"name": "student", "distill": {"student": {"arch": "transformer", "layers": [1]},
                                        "epochs": 1, "lr": 0.0001, "batch_size": 16}},
        {"name": "student-int8", "from": "student", "quantize": {"mode": "dynamic"}}],
        "budget": {"max_accuracy_drop": 1.0, "min_label_agreement": 0.0},
        "latency": {"runs": 5, "warmup": 1}}
    with recording_rows():
        res = danlu.run(None, {"compress": compress}, resume=run_dir, until="compress")
    assert res.stages == {"data": "cached", "train": "cached", "evaluate": "cached",
                          "export": "cached", "compress": "ran"}, res.stages
    return run_dir, json.loads((run_dir / "compress" / "pareto.json").read_text())


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """A run of a feature type and a model family defined outside danlu
    (tests/contracts/toy_plugin.py): points inside a circle, from [a, a^2, b, b^2] (~5 s)."""
    import numpy as np

    import danlu
    import tests.contracts.toy_plugin  # noqa: F401  (registers toy_square and toy_linear)

    d = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(400, 2))
    y = (x ** 2).sum(axis=1) > 2.0  # a circle: linear in [a, a^2, b, b^2], not in [a, b]
    lines = ["a,b,inside"] + [f"{a:.5f},{b:.5f},{'yes' if t else 'no'}"
                              for (a, b), t in zip(x, y, strict=True)]
    (d / "circle.csv").write_text("\n".join(lines) + "\n")
    recipe = {"name": "toy", "data": {"source": f"csv:{d / 'circle.csv'}", "target": "inside",
                                      "features": {"a": "toy_square", "b": "toy_square"}},
              "model": {"arch": "toy_linear"},
              "train": {"epochs": 40, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.05}},
              "evaluate": {"gate": {"accuracy": 0.9}}}
    return danlu.run(recipe, out=d / "runs")


@pytest.fixture
def write_csv(tmp_path):
    """Write rows (a header first) to a CSV file and return its path."""

    def write(rows: list[list[object]], name: str = "data.csv") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(",".join("" if v is None else str(v) for v in r) for r in rows)
                        + "\n")
        return path

    return write
