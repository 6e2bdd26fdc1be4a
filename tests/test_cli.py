"""The `danlu` command as a user runs it: a real subprocess of the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DIGITS

DANLU = str(Path(sys.executable).with_name("danlu"))


def danlu(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([DANLU, *args], check=False, capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "COLUMNS": "120"})


def test_help_lists_the_commands():
    r = danlu("--help")
    assert r.returncode == 0
    for word in ("run", "serve", "One recipe from data to a served model"):
        assert word in r.stdout


def test_run_help_explains_overrides_out_and_resume():
    r = danlu("run", "--help")
    assert r.returncode == 0
    for word in ("KEY=VALUE", "--out", "--resume", "train.epochs=5"):
        assert word in r.stdout


def test_serve_help_defaults_to_loopback():
    r = danlu("serve", "--help")
    assert r.returncode == 0 and "127.0.0.1" in r.stdout and "8080" in r.stdout
    assert "serve.KEY=VALUE" in r.stdout and "recipe.yaml" in r.stdout  # where settings come from


def test_version():
    r = danlu("--version")
    assert r.returncode == 0 and r.stdout.startswith("danlu 0.")


def test_recipe_error_exits_2_with_the_dotted_path(tmp_path):
    r = danlu("run", str(DIGITS), "train.optimizer.nmae=adam", "--out", str(tmp_path))
    assert r.returncode == 2
    assert "train.optimizer.nmae" in r.stderr and "did you mean 'train.optimizer.name'" in r.stderr
    assert "Traceback" not in r.stderr and not any(tmp_path.iterdir())


def test_gate_failure_exits_non_zero_without_a_package(tmp_path):
    r = danlu("run", str(DIGITS), "train.epochs=1", "evaluate.gate={accuracy: 0.9999}",
              "--out", str(tmp_path))
    assert r.returncode == 3 and "gate failed" in r.stderr and "not packaged" in r.stderr
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "package").exists()
