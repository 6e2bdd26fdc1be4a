"""What escapes a command prints one line, never a traceback: a bug (here a plug-in reader that
raises) is `error: <type>: <message> (traceback in <path>)`, exit 1, and the traceback is in
the run folder's log.txt, or in a temporary file when no run folder exists yet."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import DANLU

PLUGIN = '''
import numpy as np
from danlu.data.readers.base import Reader, schemes


class Boom(Reader):
    def __init__(self, rest):
        if rest == "at-open":
            raise RuntimeError("the reader broke while opening")
        self.columns, self.label_values = ["x"], []
        self.declared = {"x": "number"}

    def chunks(self, parse=None):
        raise ZeroDivisionError("the reader broke while reading [row 7]")
        yield


@schemes.register("boom")
def open_boom(rest, opts):
    return Boom(rest)
'''


def _danlu(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "boom_plugin.py").write_text(PLUGIN)
    return subprocess.run([DANLU, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(tmp_path), *sys.path]), "DANLU_PLUGINS": "boom_plugin",
                              "TMPDIR": str(tmp_path), "COLUMNS": "200", **env})


def _recipe(tmp_path: Path, source: str, declared: bool = True) -> Path:
    """A recipe reading `source`; undeclared features are resolved (the reader opened) before
    the run folder is made."""
    path = tmp_path / "r.yaml"
    data = {"source": source, **({"features": {"x": "number"}} if declared else {})}
    path.write_text(json.dumps({"data": data, "model": {"arch": "mlp"}}))
    return path


def _logged(r: subprocess.CompletedProcess, kind: str, message: str) -> Path:
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    m = re.fullmatch(rf"error: {kind}: {re.escape(message)} \(traceback in (.+)\)", line)
    assert m, line
    return Path(m.group(1))


def test_an_unexpected_error_in_a_stage_goes_to_the_run_log(tmp_path):
    r = _danlu(tmp_path, "data", "prepare", str(_recipe(tmp_path, "boom:ok")), "--out", "runs")
    log = _logged(r, "ZeroDivisionError", "the reader broke while reading [row 7]")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (tmp_path / log).resolve() == (run_dir / "log.txt").resolve()  # relative to the cwd
    text = (tmp_path / log).read_text()
    assert "stage data failed" in text and "Traceback" in text and "boom_plugin.py" in text
    assert run_dir.joinpath("manifest.json").read_text().count('"failed"') == 1


def test_an_unexpected_error_before_a_run_folder_goes_to_a_temp_file(tmp_path):
    r = _danlu(tmp_path, "run", str(_recipe(tmp_path, "boom:at-open", declared=False)),
               "--out", "runs")
    log = _logged(r, "RuntimeError", "the reader broke while opening")
    assert log.parent == tmp_path and "raise RuntimeError" in log.read_text()
    assert not (tmp_path / "runs").exists()


def test_danlu_traceback_lets_the_exception_through(tmp_path):
    r = _danlu(tmp_path, "run", str(_recipe(tmp_path, "boom:at-open", declared=False)),
               DANLU_TRACEBACK="1")
    assert r.returncode == 1 and "Traceback" in r.stderr and "RuntimeError" in r.stderr


@pytest.mark.parametrize("args, code, words", [
    (["--help"], 0, "Usage"),
    (["nosuchcommand"], 2, "No such command"),
    (["init", "csv:x.csv"], 2, "Missing option '--target'"),
])
def test_help_and_usage_errors_are_click_s_own(tmp_path, args, code, words):
    r = _danlu(tmp_path, *args)
    assert r.returncode == code and words in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("command", [[DANLU, "serve"], [sys.executable, "-m", "danlu.serve"]])
def test_serve_startup_errors_are_one_line(tmp_path, command):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "danlu-model.json").write_text("{not json")
    r = subprocess.run([*command, str(pkg)], capture_output=True, text=True, timeout=60,
                       check=False, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: ") and "danlu-model.json" in line and "not valid JSON" in line


def test_an_unexpected_serve_start_up_error_is_one_line(tmp_path):
    """A failure inside the server's start-up (here: the server function itself raises)."""
    code = ("import sys, danlu.serve.app as app\n"
            "def broken(paths, cfg): raise OSError('the server could not start')\n"
            "app.serve = broken\n"
            "from danlu.cli import main\n"
            f"sys.argv = ['danlu', 'serve', {str(tmp_path)!r}]\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       check=False, cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path),
                                                       "COLUMNS": "200"})
    log = _logged(r, "OSError", "the server could not start")
    assert log.parent == tmp_path and "in broken" in log.read_text()
