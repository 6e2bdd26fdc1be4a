"""`danlu run` writes inside its run folder only, and every file there is readable like a model
file: a real subprocess in an empty working folder, with int8 quantization (ORT) on the way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DIGITS

DANLU = str(Path(sys.executable).with_name("danlu"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, str]:
    """An empty working folder after `danlu run` (3 epochs; auto int8: dynamic and static ORT),
    and what the run printed."""
    cwd = tmp_path_factory.mktemp("cwd")
    r = subprocess.run([DANLU, "run", str(DIGITS), "train.epochs=3", "evaluate.gate={}",
                        "compress.variants=[{name: int8, quantize: {mode: auto, calibration_samples: 64}}]",
                        "compress.latency.runs=5", "compress.latency.warmup=1"],
                       cwd=cwd, umask=0o022, capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 0, r.stderr + r.stdout
    return cwd, r.stdout


@pytest.mark.slow
def test_run_writes_nothing_in_the_working_folder_but_runs(workdir):
    workdir, _ = workdir
    assert sorted(p.name for p in workdir.iterdir()) == ["runs"]
    (run_dir,) = (workdir / "runs").iterdir()
    assert (run_dir / "compress" / "int8" / "model.onnx").is_file()  # ORT quantization ran


@pytest.mark.slow
def test_every_run_file_is_readable_by_group_and_others(workdir):
    workdir, _ = workdir
    (run_dir,) = (workdir / "runs").iterdir()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 20
    private = [f"{oct(p.stat().st_mode & 0o777)} {p.relative_to(run_dir)}" for p in files
               if p.stat().st_mode & 0o044 != 0o044]
    assert private == []
    assert [p.name for p in files if p.name.endswith(".tmp")] == []  # no half-written leftovers


@pytest.mark.slow
def test_run_prints_the_run_folder_and_metrics(workdir):
    workdir, out = workdir
    (run_dir,) = (workdir / "runs").iterdir()
    (line,) = [ln for ln in out.splitlines() if ln.startswith("run folder: ")]
    assert (workdir / line.removeprefix("run folder: ")).resolve() == run_dir.resolve()
    assert "accuracy" in out and "parity label agreement" in out
    assert "\x1b[" not in out  # no progress bar or colour codes when not a terminal
