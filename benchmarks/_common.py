"""What every benchmark shares: a quiet machine, the load average, where results go, RESULTS.md.

A benchmark script does:

    ap = argparse.ArgumentParser(...); ...; add_args(ap); args = ap.parse_args()
    bench = Bench.start("train_loop", args)      # waits for a quiet machine, records the load
    ...measure...
    bench.save("train_loop.json", result)       # result + date, machine, load before/after
    bench.rows("| train_loop ", [f"| train_loop ... | {ours} | {base} | {ratio} | {bench.cell()}"])

Quiet: before measuring, a run waits (polling every 10 s, up to --max-wait, default 10 minutes)
until the 1-minute load average is at most 1.5 (issue 16: timings taken at load 5-15 on 2 cores
were 2-10x off). A run still above it measures anyway and says so in its JSON (`loaded: true`)
and in every row it writes ("LOADED: 1-min load 4.2 at start"). The load after includes the
benchmark's own work (a CPU-bound run on 2 cores ends near 2): the figure before is the one that
says whether anything else was running.

Where: `--out DIR` (or $DANLU_BENCH_OUT) is the folder for the JSON. Rows go to
benchmarks/RESULTS.md only when DIR is benchmarks/results (the default of a full run); anywhere
else they go to DIR/RESULTS.md. `--quick` (a check that the script runs) defaults to a new temp
folder and never writes into benchmarks/results or benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
if str(ROOT / "src") not in sys.path:  # this checkout's danlu, installed or not
    sys.path.insert(0, str(ROOT / "src"))

LOAD_LIMIT = 1.5  # 1-minute load average above which a machine is not quiet (issue 16)
MAX_WAIT_S = 600.0  # how long a full run waits for it to drop
POLL_S = 10.0
HEADER = ("| benchmark | ours | baseline | ratio | machine | date |\n"
          "|---|---|---|---|---|---|\n")

__all__ = ["Bench", "add_args", "machine", "replace_rows", "replace_section"]


def add_args(ap: argparse.ArgumentParser) -> None:
    """--out and --max-wait, the same in every benchmark (each script adds its own --quick)."""
    ap.add_argument("--out", type=Path, default=None,
                    help="folder for the results JSON (default $DANLU_BENCH_OUT, else "
                         "benchmarks/results; --quick: a new temp folder). RESULTS.md rows go to "
                         "benchmarks/RESULTS.md only for benchmarks/results, else to OUT/RESULTS.md")
    ap.add_argument("--max-wait", type=float, default=None, metavar="SECONDS",
                    help=f"wait up to this long for the 1-minute load to drop to {LOAD_LIMIT} before "
                         f"measuring (default {MAX_WAIT_S:.0f}; 0 with --quick)")


def machine() -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores, Linux x86_64': the CPU model where /proc has it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def wait_for_quiet(max_wait: float, limit: float = LOAD_LIMIT, poll: float = POLL_S) -> float:
    """Sleep until the 1-minute load average is <= limit or max_wait seconds passed; seconds waited."""
    t0 = time.monotonic()
    load = os.getloadavg()[0]
    if load > limit and max_wait > 0:
        print(f"[bench] 1-min load {load:.2f} > {limit}: waiting up to {max_wait:.0f} s for a quiet "
              "machine", file=sys.stderr, flush=True)
    while load > limit and (left := max_wait - (time.monotonic() - t0)) > 0:
        time.sleep(min(poll, left))
        load = os.getloadavg()[0]
    return time.monotonic() - t0


class Bench:
    """One benchmark run: where it writes, the machine, the load average before and after."""

    def __init__(self, name: str, out: Path, quick: bool = False) -> None:
        self.name, self.out, self.quick = name, Path(out), quick
        self.machine = machine()
        self.started = datetime.now(UTC)
        self.waited_s = 0.0
        self.load_before = self.load_after = tuple(os.getloadavg())

    @classmethod
    def start(cls, name: str, args: argparse.Namespace) -> Bench:
        """Resolve the output folder, wait for a quiet machine (not under --quick), note the load."""
        quick = bool(getattr(args, "quick", False))
        out = args.out or (Path(os.environ["DANLU_BENCH_OUT"]) if os.environ.get("DANLU_BENCH_OUT")
                           else None)
        if out is None:
            out = Path(tempfile.mkdtemp(prefix=f"danlu-bench-{name}-quick-")) if quick else RESULTS
        if quick and Path(out).resolve() == RESULTS.resolve():
            raise SystemExit("--quick never writes into benchmarks/results: give another --out "
                             "(or none: a temp folder)")
        bench = cls(name, out, quick)
        max_wait = args.max_wait if args.max_wait is not None else (0.0 if quick else MAX_WAIT_S)
        bench.waited_s = wait_for_quiet(max_wait)
        bench.started = datetime.now(UTC)
        bench.load_before = bench.load_after = tuple(os.getloadavg())
        print(f"[bench] {name}: results in {bench.out}; 1-min load {bench.load_before[0]:.2f} at "
              f"start{' (LOADED)' if bench.loaded else ''}", file=sys.stderr, flush=True)
        return bench

    @property
    def loaded(self) -> bool:
        return self.load_before[0] > LOAD_LIMIT

    @property
    def date(self) -> str:
        return self.started.strftime("%Y-%m-%d")

    @property
    def results_md(self) -> Path:
        return RESULTS_MD if self.out.resolve() == RESULTS.resolve() else self.out / "RESULTS.md"

    def finish(self) -> dict[str, Any]:
        """Note the load after (call when measuring ends; again after a later part); the record."""
        self.load_after = tuple(os.getloadavg())
        return self.record()

    def record(self) -> dict[str, Any]:
        """What every results JSON carries: when, where, and how loaded the machine was."""
        return {"date": self.date, "started": self.started.isoformat(timespec="seconds"),
                "machine": self.machine, "quick": self.quick,
                "load_before": list(self.load_before), "load_after": list(self.load_after),
                "load_limit": LOAD_LIMIT, "waited_for_quiet_s": round(self.waited_s, 1),
                "loaded": self.loaded}

    def cell(self) -> str:
        """The row's `machine | date |` cells: the machine, the 1-min load before -> after, and
        LOADED (or quick) when the figures must not be read as results."""
        load = f"1-min load {self.load_before[0]:.1f} -> {self.load_after[0]:.1f}"
        if self.loaded:
            load = (f"LOADED: 1-min load {self.load_before[0]:.1f} at start (waited "
                    f"{self.waited_s:.0f} s), {self.load_after[0]:.1f} at end")
        quick = "; --quick smoke run, not a result" if self.quick else ""
        return f"{self.machine}; {load}{quick} | {self.date} |"

    def note(self) -> str:
        """The same for a section's heading: '(DATE, MACHINE; 1-min load ...)'."""
        return f"({self.cell().removesuffix(' |').replace(' | ', '; ')})"

    def save(self, filename: str, result: dict[str, Any]) -> Path:
        """Write OUT/filename atomically: the record (date, machine, load) first, then result."""
        from danlu.runs import write_json

        path = write_json(self.out / filename, {**self.record(), **result})
        print(f"[bench] wrote {path}", file=sys.stderr, flush=True)
        return path

    def rows(self, prefixes: str | tuple[str, ...], rows: list[str]) -> Path:
        """Replace this benchmark's rows (lines starting with a prefix) in the summary table."""
        replace_rows(self.results_md, prefixes, rows)
        return self.results_md

    def section(self, marker: str, text: str, end: str = "section") -> Path:
        """Replace (or append) the section whose heading starts with `marker`."""
        replace_section(self.results_md, marker, text, end)
        return self.results_md


def replace_rows(path: Path, prefixes: str | tuple[str, ...], rows: list[str]) -> None:
    """Drop every line starting with a prefix, then add `rows` at the end of the summary table
    (the first `| benchmark | ours | ...` table; made at the top if the file has none)."""
    from danlu.runs import atomic_write

    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    lines = [ln for ln in text.splitlines() if not ln.startswith(prefixes)]
    head = HEADER.splitlines()
    if head[0] not in lines:
        lines[1:1] = ["", *head]  # under the title
    at = lines.index(head[0]) + 2
    while at < len(lines) and lines[at].startswith("|"):
        at += 1
    lines[at:at] = rows
    atomic_write(path, "\n".join(lines).rstrip("\n") + "\n")


def replace_section(path: Path, marker: str, text: str, end: str = "section") -> None:
    """Replace the block from the line starting with `marker` to the next `## ` heading
    (end="section") or to the end of its first table (end="table": notes after it stay), or
    append it."""
    from danlu.runs import atomic_write

    lines = (path.read_text() if path.is_file() else "# Benchmark results\n").splitlines()
    new = text.strip("\n").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(marker)), None)
    if start is None:
        lines += ["", *new]
    else:
        stop = start + 1
        if end == "table":
            while stop < len(lines) and not lines[stop].startswith("|"):
                stop += 1
            while stop < len(lines) and lines[stop].startswith("|"):
                stop += 1
        else:
            while stop < len(lines) and not lines[stop].startswith("## "):
                stop += 1
            new = [*new, ""]
        lines[start:stop] = new
    atomic_write(path, "\n".join(lines).rstrip("\n") + "\n")
