"""A short soak (the benchmark's, 20 s) on the digits package danlu wrote: wrk at concurrency 32
with 1% malformed requests."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from .conftest import digits_body, running_server

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py"


def _bench():
    spec = importlib.util.spec_from_file_location("serving_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (.ci/run installs it)")
def test_soak_no_5xx_no_crash_bounded_memory(digits_package: Path, digits_eval,
                                             tmp_path: Path) -> None:
    bench = _bench()
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(digits_body(digits_eval.values["pixels"][:1])))
    bad.write_text('{"inputs": [{"name": "pixels", "shape": [1, 64], "data": [1, 2')
    with running_server([digits_package]) as (url, proc):
        result = bench.soak(f"{url}/v2/models/digits/infer", proc.pid, good, bad, seconds=10,
                            concurrency=32, warmup=3)
    assert result["alive"], result
    assert result["status_5xx"] == 0 and result["status_other"] == 0, result
    assert result["requests"] > 1000 and result["status_2xx"] > 0
    assert 0.005 < result["malformed_fraction"] < 0.02  # the 1% bad bodies got their 400s
    assert result["connect_errors"] + result["read_errors"] + result["timeouts"] == 0, result
    assert result["rss_growth"] < 0.10, result
