"""benchmarks/_common.py, what every benchmark shares: rows land in RESULTS.md's summary table,
every result says how loaded the machine was, and a --quick check never writes the real results."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("bench_common", BENCHMARKS / "_common.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rows_replace_earlier_ones_inside_the_summary_table(common, tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\n" + common.HEADER + "| a: one | 1 | 2 | 0.5x | m | d |\n"
                  "| b: old | 1 | 1 | 1x | m | d |\n\n## a section\n\ntext\n"
                  "| b: stranded | 1 | 1 | 1x | m | d |\n")
    common.replace_rows(md, "| b:", ["| b: new | 3 | 1 | 3x | m | d |"])
    lines = md.read_text().splitlines()
    new = "| b: new | 3 | 1 | 3x | m | d |"
    assert [ln for ln in lines if ln.startswith("| b:")] == [new]
    assert lines.index(new) == lines.index("| a: one | 1 | 2 | 0.5x | m | d |") + 1
    assert "## a section" in lines and "text" in lines


def test_table_section_keeps_the_notes_after_it(common, tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# R\n\n### serving.py, old\n\n| x |\n|---|\n| 1 |\n\nNotes: kept.\n")
    common.replace_section(md, "### serving.py,", "### serving.py, new\n\n| x |\n|---|\n| 2 |",
                           end="table")
    text = md.read_text()
    assert "old" not in text and "| 2 |" in text and "| 1 |" not in text and "Notes: kept." in text


def test_quick_writes_to_a_temp_folder_and_says_how_loaded(common, monkeypatch) -> None:
    monkeypatch.delenv("DANLU_BENCH_OUT", raising=False)
    args = argparse.Namespace(quick=True, out=None, max_wait=None)
    bench = common.Bench.start("x", args)  # --quick never waits
    assert bench.out.is_dir() and bench.out.resolve() != common.RESULTS.resolve()
    assert bench.results_md == bench.out / "RESULTS.md"
    record = bench.finish()
    assert len(record["load_before"]) == 3 and len(record["load_after"]) == 3
    assert record["machine"] and record["date"] and record["quick"] is True
    bench.load_before = (common.LOAD_LIMIT + 2.0, 0.0, 0.0)
    assert "LOADED: 1-min load" in bench.cell() and "smoke run" in bench.cell()
    with pytest.raises(SystemExit):
        common.Bench.start("x", argparse.Namespace(quick=True, out=common.RESULTS, max_wait=None))


def test_wait_for_quiet_gives_up_at_its_limit(common) -> None:
    assert common.wait_for_quiet(max_wait=0.2, limit=-1.0, poll=0.05) >= 0.2  # never quiet
    assert common.wait_for_quiet(max_wait=60, limit=1e9) < 1  # quiet at once
