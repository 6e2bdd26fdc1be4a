"""Cleaning rules on real files: every removal counted by reason, `fail` names row and column."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from danlu.errors import DataError
from tests.data.helpers import prepared


def _dirty_csv(write_csv):
    # 40 clean rows with two classes, then one row per problem (data rows 41..47).
    rows = [["a", "b", "y"]] + [[i, i % 7, i % 2] for i in range(40)]
    rows += [[1.5, None, 0],        # 41: empty cell -> nan_or_inf (column b)
             [2.5, "inf", 1],        # 42: inf
             [3.5, "oops", 0],       # 43: not a number -> wrong_type
             [1e6, 1, 1],            # 44: out of the declared range of a
             [4.5, 2, None],         # 45: missing label
             [5.5, 3],               # 46: two cells instead of three
             [6.5, 4, 0]]            # 47: fine
    return write_csv(rows)


def test_every_invalid_row_is_dropped_and_counted_by_reason(tmp_path, write_csv):
    path = _dirty_csv(write_csv)
    r = prepared(tmp_path / "d", {"source": f"csv:{path}", "target": "y"},
                 {"clean": {"ranges": {"a": [None, 1000]}, "missing": "drop"}})
    c = r["cleaning"]
    assert c["removed"] == {"nan_or_inf": 2, "wrong_type": 1, "out_of_range": 1,
                            "missing_label": 1, "wrong_column_count": 1}
    assert c["rows_in"] == 47 and c["rows_out"] == 41
    assert {e["row"] for e in c["examples"]["nan_or_inf"]} == {41, 42}
    assert c["examples"]["wrong_type"] == [{"row": 43, "column": "b"}]
    assert c["examples"]["out_of_range"] == [{"row": 44, "column": "a"}]
    assert c["examples"]["wrong_column_count"] == [{"row": 46, "text": "5.5,3"}]
    kept = pq.read_table(tmp_path / "d" / "clean.parquet").column("__row__").to_pylist()
    assert sorted(kept) == [*range(1, 41), 47]


@pytest.mark.parametrize("bad,row,column", [
    ([1.5, None, 0], 3, "b"), ([1.5, "oops", 0], 3, "b"), ([1e6, 1, 1], 3, "a"),
    ([1.5, 2, None], 3, "y"), ([1.5, 2], 3, None), ([1, 2, 3, 4], 3, None)])
def test_fail_policy_stops_at_the_first_bad_row_with_its_number_and_column(
        tmp_path, write_csv, bad, row, column):
    rows = [["a", "b", "y"], [1, 2, 0], [3, 4, 1], bad, [5, None, 1], [6, 7]]
    with pytest.raises(DataError) as info:
        prepared(tmp_path / "d", {"source": f"csv:{write_csv(rows)}", "target": "y"},
                 {"clean": {"invalid": "fail", "missing": "drop", "ranges": {"*": [-100, 100]}}})
    assert info.value.row == row and info.value.column == column
    assert "use 'drop'" in str(info.value) and f"row {row}" in str(info.value)


def test_exact_duplicates_are_removed_and_label_conflicts_reported_apart(tmp_path, write_csv):
    rows = [["a", "b", "y"]] + [[i, i * 2, i % 2] for i in range(30)]
    rows += [[3, 6, 1], [3, 6, 1], [4, 8, 0],  # 3 duplicates of rows 4 and 5 (same label)
             [5, 10, 0]]                        # row 6 is (5, 10, 1): a conflicting label
    r = prepared(tmp_path / "d", {"source": f"csv:{write_csv(rows)}", "target": "y"})
    c = r["cleaning"]
    assert c["removed"]["duplicate"] == 3
    assert c["removed"]["label_conflict"] == 2 and c["label_conflicts"]["feature_groups"] == 1
    assert c["rows_out"] == 34 - 5
    kept = set(pq.read_table(tmp_path / "d" / "clean.parquet").column("__row__").to_pylist())
    assert {4, 5} <= kept and not {6, 34} & kept  # first copies stay; both conflicting rows go


def test_digits_has_no_exact_duplicates_and_one_near_duplicate_pair(tmp_path):
    # What we found in scikit-learn's digits: no two images are identical; 48 pairs share
    # their 8x8 average hash but only one pair also agrees pixel by pixel (within 2%).
    r = prepared(tmp_path / "d", {"source": "sklearn:digits"})
    c = r["cleaning"]
    assert "duplicate" not in c["removed"] and c["label_conflicts"]["rows"] == 0
    nd = c["near_duplicates"]
    assert nd["hash_candidates"] == 48 and nd["pairs"] == 1 and nd["pairs_with_different_labels"] == 0


def _digits_csv(tmp_path, extra):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.vstack([d.data, d.data[extra[0]] + extra[1]])
    y = np.r_[d.target, d.target[extra[0]]]
    path = tmp_path / "digits.csv"
    cols = [f"p{i}" for i in range(64)]
    path.write_text(",".join([*cols, "y"]) + "\n" + "\n".join(
        ",".join(str(v) for v in [*row, lab]) for row, lab in zip(x.astype(int), y, strict=True)))
    return path


def test_a_copied_row_leaking_into_test_is_caught(tmp_path):
    copies = np.arange(0, 600, 3)  # 200 rows appended again, exactly
    path = _digits_csv(tmp_path, (copies, 0))
    data = {"source": f"csv:{path}", "target": "y", "image_shape": [1, 8, 8]}
    r = prepared(tmp_path / "a", data, {"clean": {"duplicates": False}})
    c = r["cleaning"]
    # About 35% of the 200 pairs straddle splits; each straddling copy leaves val/test.
    assert c["removed"]["leakage"] == c["leakage"]["val"] + c["leakage"]["test"] >= 40
    t = pq.read_table(tmp_path / "a" / "clean.parquet").to_pandas()
    feats = t[[f"p{i}" for i in range(64)]].astype(float).round(3).astype(str).agg(",".join, axis=1)
    for s in (1, 2):  # no evaluation row equals a training row any more
        assert not set(feats[t["__split__"] == s]) & set(feats[t["__split__"] == 0])
    # With de-duplication on, the copies go before the split, so nothing can leak.
    # (Near duplicates off: digits' one real near-duplicate pair could still straddle splits.)
    r2 = prepared(tmp_path / "b", data, {"clean": {"near_duplicates": {"enabled": False}}})
    assert r2["cleaning"]["removed"]["duplicate"] == 200 and "leakage" not in r2["cleaning"]["removed"]


def test_near_duplicate_images_leak_unless_dropped(tmp_path):
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    copies = np.arange(1, 900, 6)  # 150 copies, 5 pixels one grey level (of 16) brighter
    base = load_digits().data[copies]
    noise = np.zeros((len(copies), 64))
    for i in range(len(copies)):
        noise[i, rng.choice(np.flatnonzero(base[i] < 16), 5, replace=False)] = 1
    path = _digits_csv(tmp_path, (copies, noise))
    data = {"source": f"csv:{path}", "target": "y", "image_shape": [1, 8, 8]}
    c = prepared(tmp_path / "a", data)["cleaning"]
    assert "duplicate" not in c["removed"]  # not exact copies
    # Brightening a pixel near the image's mean flips a hash bit: distance 0 finds most copies,
    # distance 3 finds every one (and the pixel check keeps other digits out).
    assert 100 <= c["near_duplicates"]["pairs"] < 150 and c["removed"]["leakage"] >= 30
    wide = {"near_duplicates": {"max_distance": 3}}
    c2 = prepared(tmp_path / "b", data, {"clean": wide})["cleaning"]
    assert 150 <= c2["near_duplicates"]["pairs"] <= 155 and c2["removed"]["leakage"] >= 40
    c3 = prepared(tmp_path / "c", data, {"clean": {"near_duplicates": {"max_distance": 3, "drop": True}}})
    assert c3["cleaning"]["removed"]["near_duplicate"] >= 150 and "leakage" not in c3["cleaning"]["removed"]


@pytest.mark.parametrize("method,action", [("zscore", "flag"), ("zscore", "drop"), ("iqr", "drop")])
def test_outliers_by_zscore_or_iqr_flag_or_drop_training_rows(tmp_path, method, action):
    import pandas as pd
    from sklearn.datasets import load_wine

    w = load_wine(as_frame=True).frame
    w.loc[[5, 70, 140], "alcohol"] = 99.0  # three wild values among alcohol's 11-15
    path = tmp_path / "wine.csv"
    w.to_csv(path, index=False)
    r = prepared(tmp_path / "d", {"source": f"csv:{path}", "target": "target"},
                 {"clean": {"outliers": {"method": method, "threshold": 4 if method == "zscore" else 3,
                                         "action": action}}})
    c = r["cleaning"]
    t = pd.read_parquet(tmp_path / "d" / "clean.parquet")
    wild = t["alcohol"] > 50
    trained = int(((t["__split__"] == 0) & wild).sum())
    if action == "flag":
        # Flagging counts the training rows beyond the fence and keeps every row.
        assert c["flagged"]["outlier"] >= trained >= 1 and r["info"]["rows"] == 178
        assert "outlier" not in c["removed"]
    else:
        # Dropped from train only (val/test keep theirs, so metrics stay honest)...
        assert c["removed"]["outlier"] >= 1 and trained == 0
        assert wild.sum() + c["removed"]["outlier"] >= 3  # every wild row left train or stayed out
        # ...and the normalizer was refitted without them: alcohol's centre is ordinary again.
        assert 11 < r["normalizer"]["shift"][0] < 15


def test_parquet_streams_in_chunks_to_the_same_result(tmp_path):
    import pyarrow as pa
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer(as_frame=True).frame
    b = pa.Table.from_pandas(pa.concat_tables([pa.Table.from_pandas(b)] * 3).to_pandas())
    path = tmp_path / "bc.parquet"
    pq.write_table(b, path)
    small = prepared(tmp_path / "s", {"source": f"parquet:{path}", "target": "target", "chunk_rows": 1000})
    whole = prepared(tmp_path / "w", {"source": f"parquet:{path}", "target": "target",
                                      "chunk_rows": 100_000})
    assert small["cleaning"]["removed"] == whole["cleaning"]["removed"] == {"duplicate": 2 * 569}
    assert np.allclose(small["normalizer"]["shift"], whole["normalizer"]["shift"])
    assert small["split"]["rows"] == whole["split"]["rows"]


def test_cleaning_json_is_plain_json_with_counts(tmp_path, write_csv):
    r = prepared(tmp_path / "d", {"source": f"csv:{_dirty_csv(write_csv)}", "target": "y"})
    text = (tmp_path / "d" / "cleaning.json").read_text()
    assert json.loads(text)["removed_total"] == sum(r["cleaning"]["removed"].values())
