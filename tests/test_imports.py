"""Imports are cheap where they must be: a fresh interpreter shows what each entry point pulls in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
# The server's stack and the numeric stack: neither belongs in reading a recipe.
HEAVY = ("fastapi", "httpx", "uvicorn", "prometheus_client", "numpy", "torch")


def _loaded_after(statement: str) -> set[str]:
    """Top-level module names in sys.modules after running `statement` in a new interpreter."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return {m.split(".")[0] for m in json.loads(proc.stdout.splitlines()[-1])}


@pytest.mark.parametrize("statement", ["import danlu.recipe", "import danlu.serve.config",
                                       "from danlu.serve import ServeConfig"])
def test_reading_a_recipe_imports_no_server_or_numeric_stack(statement: str) -> None:
    loaded = _loaded_after(statement)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_cli_start_up_imports_only_typer_rich_and_danlu() -> None:
    loaded = _loaded_after("import danlu.cli")
    heavy = {*HEAVY, "pydantic", "yaml", "onnxruntime", "pandas", "pyarrow", "sklearn"}
    assert not loaded & heavy, sorted(loaded & heavy)
