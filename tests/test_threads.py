"""danlu.threads: each process's share of the cores and a short OpenMP spin before sleeping, the user's own
settings kept (the serve workers' side: tests/serve/test_batching.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from danlu.threads import SPINCOUNT, SWITCH, child_env, share

SRC = Path(__file__).resolve().parents[1] / "src"


def test_children_split_the_cores_and_keep_what_the_user_set() -> None:
    user = {"PATH": "/bin", "MKL_NUM_THREADS": "3"}
    rank = child_env(2, user)
    assert rank["GOMP_SPINCOUNT"] == SPINCOUNT and "OMP_WAIT_POLICY" not in rank
    assert rank["OMP_NUM_THREADS"] == rank["OPENBLAS_NUM_THREADS"] == str(share(2))
    assert rank["MKL_NUM_THREADS"] == "3"
    # a child of that child (e.g. a tuning worker's own subprocess, alone) recomputes danlu's
    # values for its share and still keeps the user's
    alone = child_env(1, rank)
    assert alone["OMP_NUM_THREADS"] == str(share(1)) and alone["MKL_NUM_THREADS"] == "3"
    active = child_env(2, {**user, "OMP_WAIT_POLICY": "ACTIVE"})
    assert active["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in active
    assert child_env(2, {**user, "GOMP_SPINCOUNT": "0"})["GOMP_SPINCOUNT"] == "0"


def test_danlu_threads_off_leaves_the_environment_alone() -> None:
    env = {"PATH": "/bin", SWITCH: "off"}
    assert child_env(4, env) == env


def test_torch_in_a_child_runs_with_its_share() -> None:
    """What torch itself reports in a process started with the policy for 2 processes."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "GOMP_", "DANLU_THREADS"))}
    env["PYTHONPATH"] = str(SRC)
    code = ("import json, os, torch; from danlu.threads import apply_torch; apply_torch(); "
            "print(json.dumps([torch.get_num_threads(), torch.get_num_interop_threads(), "
            "os.environ['GOMP_SPINCOUNT']]))")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(2, env), check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == [share(2), share(2), SPINCOUNT]
