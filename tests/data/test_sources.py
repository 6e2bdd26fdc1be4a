"""Data sources: bundled sets, CSV/Parquet files as users have them, and row-numbered errors."""

from __future__ import annotations

import numpy as np
import pytest

from danlu.data.normalize import Normalizer
from danlu.data.sources import load_source
from danlu.data.split import split_indices
from danlu.errors import DataError, RecipeError


@pytest.mark.parametrize("name,rows,classes", [("digits", 1797, 10), ("iris", 150, 3),
                                               ("wine", 178, 3), ("breast_cancer", 569, 2)])
def test_bundled_sets_load_without_network(name, rows, classes):
    t = load_source(f"sklearn:{name}")
    assert t.x.shape[0] == rows and t.num_classes == classes and t.x.dtype == np.float32
    assert (t.image_shape == [1, 8, 8]) == (name == "digits")


def test_csv_with_constant_column_and_string_labels(write_csv):
    rows = [["a", "const", "b", "label"]] + [[i, 7, i % 3, "cat" if i % 2 else "dog"]
                                             for i in range(20)]
    t = load_source(f"csv:{write_csv(rows)}", target="label")
    assert t.feature_names == ["a", "const", "b"] and t.label_names == ["cat", "dog"]
    assert t.x.shape == (20, 3) and set(t.y.tolist()) == {0, 1}


def test_parquet_source(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x1": [0.1, 0.2, 0.3, 0.4], "y": [1, 2, 1, 2]}), path)
    t = load_source(f"parquet:{path}", target="y")
    assert t.label_names == ["1", "2"] and t.x.shape == (4, 1)


def test_non_numeric_cell_is_reported_with_row_and_column(write_csv):
    rows = [["a", "b", "y"], [1, 2, 0], [3, 4, 1], [5, "oops", 0]]
    with pytest.raises(DataError) as info:
        load_source(f"csv:{write_csv(rows)}", target="y")
    assert info.value.row == 3 and info.value.column == "b" and "'oops'" in str(info.value)


def test_missing_value_is_reported_with_row(write_csv):
    rows = [["a", "b", "y"], [1, 2, 0], [3, None, 1]]
    with pytest.raises(DataError) as info:
        load_source(f"csv:{write_csv(rows)}", target="y")
    assert (info.value.row, info.value.column) == (2, "b")


def test_unknown_target_lists_the_columns(write_csv):
    with pytest.raises(RecipeError, match="one of a, y"):
        load_source(f"csv:{write_csv([['a', 'y'], [1, 0]])}", target="label")


def test_single_class_is_refused(write_csv):
    with pytest.raises(DataError, match="2 or more"):
        load_source(f"csv:{write_csv([['a', 'y'], [1, 0], [2, 0]])}", target="y")


def test_image_shape_must_match_feature_count():
    with pytest.raises(RecipeError, match="64 features"):
        load_source("sklearn:digits", image_shape=[1, 7, 7])


def test_split_is_seeded_disjoint_and_stratified():
    y = load_source("sklearn:digits").y
    a, b = split_indices(y, 0.15, 0.2, seed=1), split_indices(y, 0.15, 0.2, seed=1)
    assert all(np.array_equal(a[k], b[k]) for k in ("train", "val", "test"))
    parts = [set(a[k].tolist()) for k in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == len(y)
    share = np.bincount(y[a["test"]], minlength=10) / len(a["test"])
    assert np.abs(share - np.bincount(y) / len(y)).max() < 0.02
    assert not np.array_equal(split_indices(y, 0.15, 0.2, seed=2)["test"], a["test"])


@pytest.mark.parametrize("kind", ["zscore", "minmax", "none"])
def test_normalizer_constant_column_and_state_round_trip(kind):
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], dtype=np.float32)
    n = Normalizer(kind).fit(x)
    out = n.transform(x)
    assert np.isfinite(out).all() and np.allclose(out[:, 1], 0 if kind != "none" else 5)
    again = Normalizer().load_state_dict(n.state_dict())
    assert np.array_equal(again.transform(x), out)
    if kind == "zscore":
        assert np.allclose(out[:, 0].mean(), 0) and np.allclose(out[:, 0].std(), 1)
    if kind == "minmax":
        assert out[:, 0].min() == 0 and out[:, 0].max() == 1
