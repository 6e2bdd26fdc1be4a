"""`danlu evaluate --data` reads new data as the data stage does: any source scheme, the run's
cleaning rules (invalid rows dropped and counted), columns and labels matched by name; text
runs and packages score texts. Through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from danlu.data.stage import load_splits
from danlu.runs import Run, read_json
from tests.evaluate.test_imbalance_and_external import _danlu


def _digits_rows(run_dir: Path) -> tuple[list[str], list[list[str]]]:
    """The digits test split as csv cells: header (an `id`, the pixels reversed, `digit`), rows."""
    s = load_splits(Run.open(run_dir))
    names = s.info["feature_names"]
    order = list(reversed(range(len(names))))
    header = ["id", *(names[j] for j in order), "digit"]
    rows = [[str(i), *(f"{row[j]:g}" for j in order), str(lab)]
            for i, (row, lab) in enumerate(zip(s.values["test"]["pixels"], s.y["test"], strict=True))]
    return header, rows


def test_invalid_rows_of_new_data_are_dropped_and_counted_not_a_crash(digits_run, tmp_path):
    header, rows = _digits_rows(digits_run.run_dir)
    rows[4][7] = ""          # data row 5: a missing value (nan_or_inf)
    rows[8][9] = "oops"      # data row 9: not a number (wrong_type)
    rows[11] = rows[11][:5]  # data row 12: a line with too few cells (wrong_column_count)
    path = tmp_path / "dirty.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    p = _danlu("evaluate", str(digits_run.run_dir), "--data", f"csv:{path}", "--target", "digit",
               "--out", str(tmp_path / "scored.json"))
    assert p.returncode == 0, p.stderr
    got = read_json(tmp_path / "scored.json")
    c = got["cleaning"]
    assert c["removed"] == {"nan_or_inf": 1, "wrong_type": 1, "wrong_column_count": 1}
    assert (c["rows_in"], c["rows_out"], got["n"]) == (360, 357, 357)
    assert c["examples"]["wrong_type"] == [{"row": 9, "column": header[9]}]
    assert c["examples"]["nan_or_inf"] == [{"row": 5, "column": header[7]}]
    assert ("rows: 360 read, 357 scored; removed 3: nan_or_inf 1, wrong_column_count 1, "
            "wrong_type 1") in " ".join(p.stdout.split())
    # Oracle: the evaluate stage's own test predictions on the same 357 rows (so the columns
    # were matched by name: reversed, `id` left out).
    with np.load(digits_run.run_dir / "eval/predictions.npz") as f:
        keep = np.setdiff1d(np.arange(len(f["y"])), [4, 8, 11])
        expected = float((f["probs"][keep].argmax(1) == f["y"][keep]).mean())
    assert got["accuracy"] == pytest.approx(expected)


def test_the_bundled_set_scores_through_its_scheme_and_bad_schemes_are_named(digits_run,
                                                                          write_csv):
    p = _danlu("evaluate", str(digits_run.run_dir), "--data", "sklearn:digits")
    assert p.returncode == 0, p.stderr
    got = read_json(digits_run.run_dir / "eval/external-digits.json")
    assert got["n"] == 1797 and got["cleaning"]["removed_total"] == 0 and got["accuracy"] > 0.95
    p = _danlu("evaluate", str(digits_run.run_dir), "--data", "cvs:new.csv")
    assert p.returncode == 2
    msg = " ".join(p.stderr.split())
    assert "--data" in msg and "did you mean 'csv'?" in msg and "jsonl" in msg
    few = write_csv([["pixel_0_0", "x", "digit"], [1.0, 2.0, "7"]], "few.csv")
    p = _danlu("evaluate", str(digits_run.run_dir), "--data", str(few), "--target", "digit")
    msg = " ".join(p.stderr.split())
    assert p.returncode == 2 and "no column 'pixel_0_1', 'pixel_0_2'" in msg
    assert "(and 58 more); the model's features are matched to columns by name" in msg


def _jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = [json.dumps({"text": t, "label": lab}) for t, lab in rows]
    lines.insert(1, "not json")                                  # line 2: malformed_line
    lines.insert(3, json.dumps({"text": "  ", "label": "x"}))    # line 4: empty_text
    path.write_text("\n".join(lines) + "\n")
    return path


def _test_split_jsonl(run_dir: Path, path: Path) -> Path:
    """The run's own test texts and labels as new data (plus a malformed and an empty line)."""
    s = load_splits(Run.open(run_dir))
    return _jsonl(path, [(str(t), s.labels[k])
                         for t, k in zip(s.values["test"]["text"], s.y["test"], strict=True)])


@pytest.mark.slow
def test_a_text_package_scores_texts_through_its_runtime(text_run, tmp_path):
    pkg = text_run.run_dir / "package"
    data = _test_split_jsonl(text_run.run_dir, tmp_path / "new.jsonl")
    p = _danlu("evaluate", str(pkg), "--data", str(data), "--out", str(tmp_path / "s.json"))
    assert p.returncode == 0, p.stderr
    got, meta = read_json(tmp_path / "s.json"), read_json(pkg / "danlu-model.json")
    runtime = meta["runtimes"][meta["runtime"]]
    assert got["model"].startswith("package (") and got["n"] == runtime["parity"]["rows"]
    assert got["cleaning"]["removed"] == {"empty_text": 1, "malformed_line": 1}
    # Oracle: export ran the same runtime on the same test texts.
    assert got["accuracy"] == pytest.approx(runtime["test_accuracy"])
    assert np.array(got["confusion_matrix"]).sum() == got["n"]


@pytest.mark.slow
def test_a_text_run_scores_new_texts_like_its_test_split(text_run, tmp_path):
    data = _test_split_jsonl(text_run.run_dir, tmp_path / "test.jsonl")
    p = _danlu("evaluate", str(text_run.run_dir), "--data", f"jsonl:{data}")
    assert p.returncode == 0, p.stderr
    got = read_json(text_run.run_dir / "eval/external-test.json")
    test = read_json(text_run.run_dir / "eval/metrics.json")["test"]
    assert got["model"] == "run (PyTorch)" and got["n"] == test["n"]
    assert got["cleaning"]["removed"] == {"empty_text": 1, "malformed_line": 1}
    assert got["accuracy"] == pytest.approx(test["accuracy"])
    assert got["confusion_matrix"] == test["confusion_matrix"]
