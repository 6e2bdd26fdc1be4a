"""`danlu serve`'s settings: ServeConfig's defaults, then the run's recipe `serve:` section,
then `serve.KEY=VALUE` overrides, then flags; checked on real `danlu serve` processes."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from danlu.errors import RecipeError
from danlu.recipe import load_recipe
from danlu.serve import ServeConfig, resolve_serve_config
from danlu.serve.config import split_overrides

from .conftest import (
    DANLU_SERVE,
    SRC,
    digits_body,
    free_port,
    metric,
    outputs_by_name,
    running_server,
    table_body,
)


@pytest.fixture
def table_run_copy(table_run, tmp_path: Path) -> Callable[..., Path]:
    """A run folder as `danlu run` left it: a copy of the iris run's package/, and its
    recipe.yaml (the resolved recipe) rewritten with `serve` settings changed."""
    def make(name: str = "run", **serve: Any) -> Path:
        run = tmp_path / name
        shutil.copytree(table_run.package_dir, run / "package")
        recipe = load_recipe(table_run.run_dir / "recipe.yaml",
                             {f"serve.{k}": v for k, v in serve.items()})
        (run / "recipe.yaml").write_text(recipe.dump(), encoding="utf-8")
        return run
    return make


def _batches_for(url: str, rows: int, model: str = "iris") -> int:
    """Send one request of `rows` rows; how many ONNX Runtime calls the server made for it."""
    if model == "iris":
        body = table_body({"features": np.ones((rows, 4), np.float32),
                           "garden": np.array(["kew"] * rows, dtype=object)})
    else:
        body = digits_body(np.ones((rows, 64), np.float32))
    outputs_by_name(httpx.post(f"{url}/v2/models/{model}/infer", json=body, timeout=30))
    assert metric(url, "danlu_batch_size_sum", model=model) == rows
    return int(metric(url, "danlu_batch_size_count", model=model))


# ---- the resolution (danlu.serve.config.resolve_serve_config) ----

def test_a_package_folder_starts_from_the_defaults(digits_run, tmp_path: Path) -> None:
    assert resolve_serve_config([digits_run.package_dir]) == ServeConfig()
    bare = tmp_path / "bare-run"  # a run folder without recipe.yaml
    shutil.copytree(digits_run.package_dir, bare / "package")
    assert resolve_serve_config([bare]) == ServeConfig()


def test_each_layer_wins_over_the_one_before(table_run_copy) -> None:
    run = table_run_copy(port=9100, max_batch_size=2, max_queue_size=7)
    assert resolve_serve_config([run]) == ServeConfig(port=9100, max_batch_size=2, max_queue_size=7)
    cfg = resolve_serve_config([run], ["serve.max_batch_size=3", "serve.host=::1"])
    assert (cfg.port, cfg.max_batch_size, cfg.host, cfg.max_queue_size) == (9100, 3, "::1", 7)
    cfg = resolve_serve_config([run], ["serve.max_batch_size=3"],
                               {"max_batch_size": 4, "port": None, "batching": False})
    assert (cfg.port, cfg.max_batch_size, cfg.batching) == (9100, 4, False)  # None = not given


def test_the_first_run_folders_section_is_used_and_a_different_one_named(
        table_run_copy, caplog: pytest.LogCaptureFixture) -> None:
    first, second = table_run_copy("a", port=9101), table_run_copy("b", port=9102, max_batch_size=3)
    with caplog.at_level(logging.WARNING, logger="danlu.serve"):
        assert resolve_serve_config([first, second]).port == 9101
    assert f"using the serve section of {first / 'recipe.yaml'}" in caplog.text
    assert "max_batch_size, port" in caplog.text


def test_a_misspelt_override_names_the_dotted_path_and_the_fix(table_run_copy) -> None:
    with pytest.raises(RecipeError, match=r"^serve\.prot: .*did you mean 'serve\.port'\?"):
        resolve_serve_config([table_run_copy()], ["serve.prot=1"])
    with pytest.raises(RecipeError, match=r"^train\.epochs: .*serve\.KEY=VALUE.*max_batch_size"):
        resolve_serve_config([table_run_copy("other")], ["train.epochs=3"])
    with pytest.raises(RecipeError, match=r"^serve\.port: got 0"):
        resolve_serve_config([], {"serve.port": 0})


def test_a_bad_section_in_a_run_recipe_names_the_file(table_run_copy) -> None:
    run = table_run_copy()
    recipe = run / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("  port: 8080", "  port: 8080\n  prot: 1"))
    with pytest.raises(RecipeError, match=rf"serve\.prot: .*in {recipe}"):
        resolve_serve_config([run])


def test_arguments_split_into_folders_and_overrides(tmp_path: Path) -> None:
    odd = tmp_path / "a=b"  # an existing folder whose name holds '=' stays a folder
    odd.mkdir()
    assert split_overrides([tmp_path, odd, "serve.port=1"]) == ([tmp_path, odd], ["serve.port=1"])


def test_a_real_run_folders_recipe_resolves(digits_run) -> None:
    cfg = resolve_serve_config([digits_run.run_dir])  # recipes/digits.yaml sets serve.port
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8080)


# ---- the real command ----

def test_danlu_serve_uses_the_run_recipes_port_and_max_batch_size(table_run_copy) -> None:
    port = free_port()
    run = table_run_copy(port=port, max_batch_size=2)
    with running_server([run], port=port, program=DANLU_SERVE) as (url, _):
        assert _batches_for(url, 7) == 4  # 2+2+2+1


def test_an_override_wins_over_the_section_and_a_flag_over_both(table_run_copy) -> None:
    run = table_run_copy(port=free_port(), max_batch_size=2)
    port = free_port()
    with running_server([run], "serve.max_batch_size=3", f"serve.port={port}", port=port,
                        program=DANLU_SERVE) as (url, _):
        assert _batches_for(url, 7) == 3  # 3+3+1
    flag_port = free_port()
    with running_server([run], "serve.max_batch_size=3", f"serve.port={port}",
                        "--max-batch-size", "4", "--port", str(flag_port), port=flag_port,
                        program=DANLU_SERVE) as (url, _):
        assert _batches_for(url, 7) == 2  # 4+3


def test_a_real_run_is_served_with_an_override(digits_run) -> None:
    port = free_port()
    with running_server([digits_run.run_dir], f"serve.port={port}", "serve.max_batch_size=5",
                        port=port, program=DANLU_SERVE) as (url, _):
        assert _batches_for(url, 7, model="digits") == 2  # 5+2


@pytest.mark.parametrize("program", [DANLU_SERVE, (sys.executable, "-m", "danlu.serve")],
                         ids=["danlu serve", "python -m danlu.serve"])
def test_a_misspelt_key_exits_2_with_one_line_naming_it(table_run_copy, program) -> None:
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(SRC)}
    proc = subprocess.run([*program, str(table_run_copy()), "serve.prot=1"], capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "serve.prot" in line and "did you mean 'serve.port'?" in line, line
