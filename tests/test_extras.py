"""Installs that fit: a command whose extra is missing says which to install, in one line;
`python -m danlu` is the `danlu` command; shell completion works with our entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from danlu.extras import EXTRAS, missing_extra
from tests.test_cli import DANLU

ROOT = Path(__file__).resolve().parents[1]

# The CLI in a fresh interpreter where the named top-level modules cannot be imported, as in an
# install without their extra (a finder that refuses them, as Python does for a missing module).
BLOCKED = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
sys.argv = ["danlu", *sys.argv[2:]]
from danlu.cli import main
main()
"""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_each_optional_module_comes_from_a_distribution_its_extra_lists() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    dists = packages_distributions()
    for module, names in EXTRAS.items():
        provided = {_name(d) for d in dists.get(module, [])}
        assert provided, f"{module}: not installed in the dev environment"
        for extra in names:
            listed = {_name(r) for r in extras[extra]}
            assert provided & listed, f"{module} ({sorted(provided)}) is not in the {extra} extra"


@pytest.mark.parametrize(("blocked", "args", "line"), [
    ("fastapi", ["serve", "{tmp}/pkg"],
     "danlu serve needs the serve extra (fastapi is not installed): pip install 'danlu[serve]'"),
    ("pyarrow", ["init", "csv:{tmp}/t.csv", "--target", "y", "--out", "{tmp}/r.yaml"],
     "danlu init needs the core extra (pyarrow is not installed): pip install 'danlu[core]'"),
], ids=["serve-without-fastapi", "init-without-pyarrow"])
def test_a_command_without_its_extra_names_the_install_in_one_line(tmp_path, blocked, args, line):
    (tmp_path / "t.csv").write_text("a,y\n1,x\n2,z\n")
    r = subprocess.run([sys.executable, "-c", BLOCKED, blocked,
                        *(a.format(tmp=tmp_path) for a in args)], capture_output=True, text=True,
                       timeout=120, check=False, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 1 and r.stderr.strip() == f"error: {line}", r.stderr


def test_an_installed_module_that_fails_to_import_is_not_called_missing() -> None:
    # optuna is installed here: a ModuleNotFoundError naming it is a real error, not an extra
    assert missing_extra(ModuleNotFoundError("No module named 'optuna'", name="optuna")) is None
    assert missing_extra(ModuleNotFoundError("No module named 'nope'", name="nope")) is None


def test_python_m_danlu_is_the_danlu_command() -> None:
    r = subprocess.run([sys.executable, "-m", "danlu", "run", "--help"], capture_output=True,
                       text=True, timeout=60, check=False, env={**os.environ, "COLUMNS": "120"})
    assert r.returncode == 0 and "Usage: python -m danlu run" in r.stdout and "--resume" in r.stdout


def test_shell_completion_completes_flags_and_prints_its_script() -> None:
    """What the script of `danlu --install-completion` runs at each Tab: the console script with
    the shell's words in the environment (click's protocol)."""
    env = {**os.environ, "_DANLU_COMPLETE": "complete_bash", "COMP_WORDS": "danlu serve --max-b",
           "COMP_CWORD": "2"}
    r = subprocess.run([DANLU], capture_output=True, text=True, timeout=60, check=False, env=env)
    assert r.returncode == 0 and r.stdout.split() == ["--max-batch-size", "--max-body-bytes"], r
    r = subprocess.run(["bash", "-c", f"{DANLU} --show-completion"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0 and "_DANLU_COMPLETE=complete_bash" in r.stdout, r.stderr
