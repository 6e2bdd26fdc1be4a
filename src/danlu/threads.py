"""The thread policy of every danlu process, decided once at start-up (docs/architecture.md).

Beside another CPU-bound job, the libraries' defaults cost 5-10x (issue 16): PyTorch's and
numpy's OpenMP/BLAS teams spin-wait for work between parallel regions, each process starts a
thread per core, and N processes of one danlu command (serve workers, tuning workers, DDP ranks)
all do so at once. The policy, per process:

- `GOMP_SPINCOUNT=10000`: an idle OpenMP thread (libgomp, the runtime torch's wheels ship) spins
  ~10k iterations (microseconds) before it sleeps, instead of libgomp's 300k (a long busy wait
  that steals a neighbour's core). Measured quietly on 2 cores (benchmarks/contention.py,
  2026-11-30): `OMP_WAIT_POLICY=PASSIVE` (sleep at once) cut the slowdown beside a neighbour as
  well, but made runs alone 16-21% slower (wake-ups between small ops); the short spin is as
  fast as the default alone (small-op loop 0.80 s vs 0.80 s) and as good as PASSIVE beside one
  (3.07 s vs 3.20 s, default 3.96 s). A user's `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` wins. It
  must be in the environment before torch or numpy load their runtime, so the CLI sets it first
  thing and children inherit it.
- `OMP_NUM_THREADS`, `MKL_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `RAYON_NUM_THREADS` (Hugging
  Face tokenizers' pool) = this process's share of the cores: cores // processes, where
  processes is how many the command runs at once on this machine (`--workers N`, `tune.workers`,
  `train.nproc`). torch reads OMP_NUM_THREADS for its intra-op threads.
- torch's inter-op pool: the same share (`apply_torch`).
- ONNX Runtime sessions: intra-op threads from the server's settings, spinning off
  (`danlu.serve.runtimes.onnx`); `TOKENIZERS_PARALLELISM=false` when the share is one thread.

A variable the user set is never changed; `DANLU_THREADS=off` leaves every setting to the
libraries (the behaviour before this policy; benchmarks/contention.py measures both).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["SWITCH", "apply_torch", "child_env", "configure", "cores", "enabled", "share"]

SWITCH = "DANLU_THREADS"  # "off": no policy at all (measure the libraries' defaults)
# The variables danlu set itself (comma-separated), so a child recomputes them for its own share
# while the ones the user set pass through untouched.
_OURS = "DANLU_THREADS_SET"
# libgomp's spin iterations before an idle thread sleeps (its default: 300,000).
SPINCOUNT = "10000"
_COUNTS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the policy applies (DANLU_THREADS is not "off"/"0"/"false")."""
    return environ.get(SWITCH, "").strip().lower() not in ("off", "0", "false", "no")


def cores() -> int:
    """Physical cores this process may run on (its affinity mask: taskset, cgroup cpusets).

    Physical, as torch and ONNX Runtime count by default: a hyper-thread sibling shares its
    core's arithmetic units, and a GEMM thread on each is no faster than one. Falls back to
    logical CPUs where Linux's sysfs topology is not there."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1
    siblings = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                siblings.add(f.read().strip())
        except OSError:
            return len(cpus) or 1
    return len(siblings) or 1


def share(processes: int = 1) -> int:
    """Threads for one of `processes` processes running at once here: cores // processes, >= 1."""
    return max(1, cores() // max(1, processes))


def child_env(processes: int = 1, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that runs beside `processes - 1` siblings (a DDP rank, a
    tuning or serving worker): `environ` (default os.environ) with this policy set for the child's
    share; what the user set is kept."""
    env = dict(os.environ if environ is None else environ)
    if not enabled(env):
        return env
    ours = {n for n in env.get(_OURS, "").split(",") if n}
    for name in ours:  # recomputed below for the child's share
        env.pop(name, None)
    threads = str(share(processes))
    wanted = dict.fromkeys(_COUNTS, threads)
    if "OMP_WAIT_POLICY" not in env:  # the user's wait policy sets libgomp's spin count itself
        wanted["GOMP_SPINCOUNT"] = SPINCOUNT
    if threads == "1":  # one thread: tokenizers' pool would only add a thread to the fight
        wanted["TOKENIZERS_PARALLELISM"] = "false"
    set_now = {k: v for k, v in wanted.items() if k not in env}
    env.update(set_now)
    env[_OURS] = ",".join(sorted(set_now))
    return env


def configure(processes: int = 1) -> dict[str, str]:
    """Set the policy in this process's environment (call it before torch, numpy or onnxruntime
    are imported: their runtimes read it once, when they load). Returns what it set."""
    before = dict(os.environ)
    env = child_env(processes, before)
    for k in set(before) - set(env):
        del os.environ[k]
    os.environ.update(env)
    return {k: v for k, v in env.items() if before.get(k) != v and k != _OURS}


def apply_torch() -> int:
    """torch's intra- and inter-op pools at this process's share (OMP_NUM_THREADS, the user's or
    the policy's); call once torch is imported, before it runs anything. Returns intra-op threads."""
    import torch

    if not enabled():
        return torch.get_num_threads()
    threads = _int(os.environ.get("OMP_NUM_THREADS")) or share()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:  # allowed once, before any inter-op work; a second call (tests, the API) is harmless
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass
    return threads


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:  # e.g. OMP_NUM_THREADS="4,2" (nested teams): let torch read it
        return 0
