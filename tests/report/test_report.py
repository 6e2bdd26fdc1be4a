"""report.html: one self-contained page from the run folder; optional sections follow their files."""

from __future__ import annotations

import re
import shutil

from danlu.report import write_report
from danlu.runs import write_json

HEADINGS = ("Summary", "Recipe", "Data", "Training", "Metrics", "Confusion matrix (test)",
            "ROC and precision-recall curves (test)", "Calibration (test)", "Worst mistakes (test)",
            "Package")


def _headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def test_run_writes_a_self_contained_report(digits_run):
    page = (digits_run.run_dir / "report.html").read_text()
    assert _headings(page) == list(HEADINGS)
    # Offline: no scripts, no stylesheets or images fetched from anywhere.
    assert "<script" not in page and "<link" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page) and "url(http" not in page
    assert page.count('<svg') == 5 and 'class="plot"' in page
    # The mistakes grid holds the misclassified digits themselves (PNG inside the SVG).
    assert "data:image/png;base64," in page
    assert re.search(r"0\.9\d\d \[0\.9\d\d, [01]\.\d{3}\]", page)  # accuracy with its interval
    assert "Tuning" not in _headings(page)
    # digits holds one near-duplicate pair across splits: cleaning removes it and says so.
    assert '<h3 id="cleaning">Cleaning</h3>' in page and "removed: leakage" in page


def test_optional_sections_render_when_their_files_exist(digits_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_run.run_dir, run)
    write_json(run / "data" / "cleaning.json", {"rows_in": 1797, "rows_out": 1790,
                                                "removed": {"duplicate": 5, "invalid": 2}})
    page = write_report(run).read_text()
    assert 'id="cleaning"' in page and "removed: duplicate" in page
    # tune/ and compress/ as their stages write them: tests/report/test_sections.py


def test_report_of_a_bare_run_folder_is_a_clear_error(tmp_path):
    import pytest

    from danlu.errors import DanluError

    with pytest.raises(DanluError, match="not a danlu run folder"):
        write_report(tmp_path)
