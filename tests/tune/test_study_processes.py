"""Real `danlu tune` processes: SIGKILL and resume, local workers on SQLite, PostgreSQL workers."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from danlu.runs import read_json
from tests.conftest import DIGITS, ROOT
from tests.tune.conftest import read_trials

# Small trials (tiny CNN, random sampler, no pruning) so every count below is exact.
ARGS = ["model.channels=[8, 16]", "model.hidden=32", "train.early_stopping.patience=0",
        "evaluate.gate={}", "tune.sampler=random", "tune.pruner=none", "tune.heartbeat_seconds=1"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def danlu_tune(*args: str) -> list[str]:
    return [sys.executable, "-m", "danlu.cli", "tune", *args]


def check_no_trial_lost_or_doubled(rows: list[dict], target: int, extra: int = 0) -> None:
    """Trial numbers 0..n-1 once each; `target` (+ at most `extra` racing) trials finished."""
    assert [r["number"] for r in rows] == list(range(len(rows)))
    finished = [r for r in rows if r["state"] in ("complete", "pruned")]
    assert target <= len(finished) <= target + extra, [(r["number"], r["state"]) for r in rows]
    failed = {r["number"] for r in rows if r["state"] == "fail"}
    retries = [r["retry_of"] for r in rows if r["retry_of"] is not None]
    assert sorted(retries) == sorted(failed)  # each dead trial retried exactly once


@pytest.mark.slow
def test_sigkill_mid_study_then_two_workers_resume_it_losing_and_doubling_no_trial(tmp_path):
    """One worker is killed mid-trial; `--resume --workers 2` finishes the study with two local
    processes sharing its SQLite file."""
    out = tmp_path / "runs"
    proc = subprocess.Popen(danlu_tune(str(DIGITS), "--trials", "4", "--out", str(out),
                                       "train.epochs=4", *ARGS),
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    states: list[tuple[int, str]] = []
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            dbs = list(out.glob("*/tune/study.db"))
            if dbs:
                try:
                    with sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True, timeout=1) as db:
                        states = db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
                except sqlite3.Error:
                    states = []
                if sum(s == "COMPLETE" for _, s in states) >= 1 and any(s == "RUNNING" for _, s in states):
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail(f"no running trial after a finished one; trials: {states}")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    (run_dir,) = out.iterdir()
    with sqlite3.connect(run_dir / "tune/study.db") as db:
        before = dict(db.execute("SELECT number, state FROM trials").fetchall())
        values = dict(db.execute("SELECT t.number, v.value FROM trials t JOIN trial_values v "
                                 "ON v.trial_id = t.trial_id WHERE t.state = 'COMPLETE'").fetchall())
    killed = [n for n, s in before.items() if s == "RUNNING"]
    assert len(killed) == 1 and read_json(run_dir / "manifest.json")["stages"]["tune"]["status"] == "running"

    done = subprocess.run(danlu_tune("--resume", str(run_dir), "--workers", "2"), check=False,
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = read_trials(run_dir)
    # Two workers may each start a trial while the 4th runs: at most one extra finishes.
    check_no_trial_lost_or_doubled(rows, target=4, extra=1)
    by_number = {r["number"]: r for r in rows}
    assert by_number[killed[0]]["state"] == "fail"
    (retry,) = [r for r in rows if r["retry_of"] == killed[0]]
    assert retry["state"] == "complete"
    # The retry draws nothing new: it takes whatever the killed trial had drawn.
    assert by_number[killed[0]]["params"].items() <= retry["params"].items()
    for number, value in values.items():  # trials finished before the kill were not run again
        assert by_number[number]["state"] == "complete" and by_number[number]["values"] == [value]
    after = [r for r in rows if r["number"] not in before]
    assert {r["worker"].rsplit(":", 1)[1] for r in after} == {"0", "1"}  # both resumed workers ran trials
    assert {(run_dir / f"tune/worker-{i}.log").is_file() for i in (0, 1)} == {True}
    best = read_json(run_dir / "tune/best.json")
    assert best["trials"]["finished"] in (4, 5) and best["trials"]["fail"] == 1
    assert (run_dir / "package/danlu-model.json").is_file()


# ---- PostgreSQL: a throwaway cluster on loopback, started and removed by the test ----

def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                    "(apt-get install postgresql; .ci/run does this)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 (the `postgres` extra) is not installed")
    bin_dir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="danlu-pg-"))
    as_pg: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        shutil.chown(base, "postgres", "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    port, data = _free_port(), base / "data"

    def pg(tool: str, *args: str) -> None:
        subprocess.run([*as_pg, str(bin_dir / tool), *args], check=True, capture_output=True,
                       timeout=120)

    pg("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    pg("pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-o",
       f"-p {port} -c listen_addresses=127.0.0.1 -k {base} -c fsync=off", "start")
    try:
        pg("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "danlu")
        yield f"postgresql://postgres@127.0.0.1:{port}/danlu"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_on_one_postgresql_study(postgres_url, tmp_path):
    import optuna

    out = tmp_path / "runs"
    done = subprocess.run(danlu_tune(str(DIGITS), "--storage", postgres_url, "--study", "digits-pg",
                                     "--workers", "2", "--trials", "4", "--out", str(out),
                                     "train.epochs=2", *ARGS),
                          check=False, env=ENV, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    assert not (run_dir / "tune/study.db").exists()  # the study lives in PostgreSQL
    study = optuna.load_study(study_name="digits-pg",
                              storage=postgres_url.replace("postgresql:", "postgresql+psycopg2:"))
    rows = read_trials(run_dir)
    assert [r["number"] for r in rows] == sorted(t.number for t in study.trials)
    check_no_trial_lost_or_doubled(rows, target=4, extra=1)
    assert not [r for r in rows if r["state"] == "fail"]
    assert {r["worker"].rsplit(":", 1)[1] for r in rows} == {"0", "1"}
    best = read_json(run_dir / "tune/best.json")
    assert best["storage"] == postgres_url and best["study"] == "digits-pg"
    assert (run_dir / "package/danlu-model.json").is_file()
