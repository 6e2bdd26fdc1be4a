"""A small real digits run (8 epochs) that compression tests may modify (promotion)."""

from __future__ import annotations

import pytest

from tests.conftest import DIGITS


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    import danlu

    return danlu.run(DIGITS, overrides={"train.epochs": 8, "evaluate.gate": {},
                                        "preprocess.augment": []}, out=tmp_path_factory.mktemp("c-runs"))


@pytest.fixture(scope="session")
def ctx(small_run):
    from danlu.compress.config import CompressConfig
    from danlu.compress.stage import make_context
    from danlu.runs import Run

    return make_context(Run.open(small_run.run_dir), CompressConfig(variants=[]))
