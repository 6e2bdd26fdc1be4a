"""Source readers: one per scheme of data.source, found through the registry; rows keep their
numbers and problems come back as Issues for the cleaning rules."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from danlu.data.clean import CleaningReport, chunk_issues, select_valid
from danlu.data.config import CleanConfig, DataConfig, PreprocessConfig
from danlu.data.features import build, resolve_features
from danlu.data.prepare import chunk_values
from danlu.data.readers import Reader, open_reader, schemes
from danlu.data.split import split_indices
from danlu.errors import DataError, RecipeError
from danlu.features.normalize import Normalizer
from tests.data.test_idx import write_idx


def _rows(reader: Reader) -> tuple[list[int], list, int]:
    """(row numbers, label values per row, chunks) over every chunk of `reader`."""
    rows, labels, n = [], [], 0
    for c in reader.chunks():
        rows += c.rows.tolist()
        labels += [reader.label_values[k] for k in c.labels]
        n += 1
    return rows, labels, n


def _sources(tmp_path) -> dict[str, tuple[str, dict, str, list]]:
    """Per scheme: a real source of 3 rows, open_reader's arguments, the parse of its first
    column (the source's own feature type where it declares one), the labels."""
    from PIL import Image

    (tmp_path / "t.csv").write_text("a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n")
    (tmp_path / "t.tsv").write_text("a\tb\ty\n1\t2\tcat\n3\t4\tdog\n5\t6\tcat\n")
    pq.write_table(pa.table({"a": [1.0, 3.0, 5.0], "y": [7, 8, 7]}), tmp_path / "t.parquet")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                                              for t, lab in [("x y", "a"), ("z", "b"), ("w", "a")]))
    for cls, n in (("one", 2), ("two", 1)):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((4, 5), 40 * i, np.uint8)).save(tmp_path / "img" / cls / f"{i}.png")
    write_idx(tmp_path / "t-images-idx3-ubyte.gz", np.arange(36, dtype=np.uint8).reshape(3, 3, 4))
    write_idx(tmp_path / "t-labels-idx1-ubyte.gz", np.array([5, 2, 5], np.uint8))
    return {
        "csv": (f"csv:{tmp_path / 't.csv'}", {"target": "y"}, "float", ["cat", "dog", "cat"]),
        "tsv": (f"tsv:{tmp_path / 't.tsv'}", {"target": "y"}, "float", ["cat", "dog", "cat"]),
        "parquet": (f"parquet:{tmp_path / 't.parquet'}", {"target": "y"}, "float", [7, 8, 7]),
        "jsonl": (f"jsonl:{tmp_path / 't.jsonl'}", {}, "string", ["a", "b", "a"]),
        "folder": (f"folder:{tmp_path / 'img'}", {}, "float", ["one", "one", "two"]),
        "idx": (f"idx:{tmp_path / 't-images-idx3-ubyte.gz'}", {}, "float", ["5", "2", "5"]),
        "sklearn": ("sklearn:iris", {}, "float", None),
        "corpus": ("corpus:bbc_news", {}, "string", None),
    }


def test_every_scheme_has_a_case_here(tmp_path):
    assert sorted(_sources(tmp_path)) == schemes.names()


@pytest.mark.parametrize("scheme", ["corpus", "csv", "folder", "idx", "jsonl", "parquet",
                                    "sklearn", "tsv"])
def test_each_scheme_reads_through_the_registry_in_numbered_chunks(tmp_path, scheme):
    source, kwargs, parse, labels = _sources(tmp_path)[scheme]
    reader = open_reader(source, chunk_rows=2, **kwargs)
    assert type(reader).__module__ == f"danlu.data.readers.{scheme}" and reader.source == source
    rows, got, chunks = _rows(reader)
    assert rows == list(range(1, len(rows) + 1))
    if labels is not None:  # small files: every row, in chunks of 2 (csv: blocks of >= 1 MiB)
        assert got == labels and chunks == (1 if scheme in ("csv", "tsv") else 2)
    first = reader.columns[0]
    chunk = next(reader.chunks({first: parse}))
    values = chunk.columns.get(first, next((chunk.columns[g] for g, cols in reader.groups.items()
                                            if first in cols), None))
    assert values.dtype == (object if parse == "string" else np.float64)


def test_an_unknown_scheme_names_data_source_the_schemes_and_the_closest():
    with pytest.raises(RecipeError) as info:
        open_reader("cvs:data.csv", target="y")
    e = info.value
    assert e.path == "data.source" and e.got == "cvs"
    assert "one of corpus, csv, folder, idx, jsonl, parquet, sklearn" in str(e)
    assert "did you mean 'csv'?" in str(e)


@pytest.mark.parametrize("name,rows,classes", [("digits", 1797, 10), ("iris", 150, 3),
                                               ("wine", 178, 3), ("breast_cancer", 569, 2)])
def test_bundled_sets_load_without_network(name, rows, classes):
    reader = open_reader(f"sklearn:{name}")
    (chunk,) = reader.chunks()
    x = np.column_stack(list(chunk.columns.values()))
    assert x.shape == (rows, 64 if name == "digits" else len(reader.columns))
    assert len(reader.label_values) == classes and reader.fixed_labels
    # the set's own features: digits are one image, the others numbers
    assert reader.declared == ({"pixels": "image"} if name == "digits"
                               else {c: "number" for c in reader.columns})
    assert (reader.shapes.get("pixels") == [1, 8, 8]) == (name == "digits")
    assert (x == x.astype(np.float32)).all()  # float32 values, as always read


def test_csv_with_constant_column_and_string_labels_in_first_seen_order(write_csv):
    rows = [["a", "const", "b", "label"]] + [[i, 7, i % 3, "cat" if i % 2 else "dog"]
                                             for i in range(20)]
    reader = open_reader(f"csv:{write_csv(rows)}", target="label")
    (chunk,) = reader.chunks()
    assert reader.columns == ["a", "const", "b"] and reader.label_values == ["dog", "cat"]
    assert list(chunk.columns) == ["a", "const", "b"] and len(chunk.columns["a"]) == 20
    assert chunk.labels.tolist() == [0, 1] * 10


def test_csv_and_parquet_string_columns_are_read_as_the_features_ask(tmp_path):
    (tmp_path / "n.csv").write_text('id,body,topic\n1,"one, two\nthree",a\n2,four,b\n')
    pq.write_table(pa.table({"body": ["one", "four"], "topic": ["a", "b"]}), tmp_path / "n.parquet")
    for scheme in ("csv", "parquet"):
        reader = open_reader(f"{scheme}:{tmp_path / f'n.{scheme}'}", target="topic")
        assert type(reader).__module__.endswith(scheme)
        (chunk,) = reader.chunks({"body": "string"})
        assert chunk.rows.tolist() == [1, 2] and reader.label_values == ["a", "b"]
        assert chunk.columns["body"][1] == "four"
    assert chunk.columns["body"].tolist() == ["one", "four"]


def test_missing_tokens_in_a_number_column_are_nan_not_wrong_type(write_csv):
    rows = [["a", "y"], [1, 0], ["NA", 1], ["?", 0], ["n/a", 1], ["", 0], ["abc", 1]]
    (chunk,) = open_reader(f"csv:{write_csv(rows)}", target="y").chunks()
    a = chunk.columns["a"]
    assert a[0] == 1 and np.isnan(a[1:]).all()
    (issue,) = chunk.issues  # only "abc" is not a number
    assert issue.reason == "wrong_type" and issue.mask.tolist() == [0, 0, 0, 0, 0, 1]


def _first_fail(source: str, reader: Reader, missing: str = "impute") -> DataError:
    # numbers declared: a short column of 2 numbers and "oops" could be inferred a category
    cfg = DataConfig(source=source, target=reader.target,
                     features={c: "number" for c in reader.columns})
    features = build(resolve_features(cfg, reader), reader, PreprocessConfig())
    parse = {c: f.parse for f in features for c in f.columns}
    clean = CleanConfig(invalid="fail", missing=missing)
    with pytest.raises(DataError) as info:
        for chunk in reader.chunks(parse):
            values = {f.name: chunk_values(chunk, f) for f in features}
            select_valid(chunk.rows, chunk_issues(chunk, values, features, clean, reader.target),
                         "fail", CleaningReport(), source)
    return info.value


def test_a_non_numeric_cell_is_an_issue_with_its_row_and_column(write_csv):
    rows = [["a", "b", "y"], [1, 2, 0], [3, 4, 1], [5, "oops", 0]]
    source = f"csv:{write_csv(rows)}"
    reader = open_reader(source, target="y")
    (chunk,) = reader.chunks()
    (issue,) = chunk.issues
    assert issue.reason == "wrong_type" and issue.column == "b" and issue.mask.tolist() == [0, 0, 1]
    e = _first_fail(source, open_reader(source, target="y"))
    assert (e.row, e.column) == (3, "b") and "not a number" in str(e)


def test_a_missing_value_fails_with_its_row_when_missing_numbers_are_dropped(write_csv):
    source = f"csv:{write_csv([['a', 'b', 'y'], [1, 2, 0], [3, None, 1], [4, 5, 0]])}"
    e = _first_fail(source, open_reader(source, target="y"), missing="drop")
    assert (e.row, e.column) == (2, "b") and "nan or inf" in str(e)


def test_unknown_target_lists_the_columns(write_csv):
    with pytest.raises(RecipeError, match="one of a, y") as info:
        open_reader(f"csv:{write_csv([['a', 'y'], [1, 0]])}", target="label")
    assert info.value.path == "data.target"


def test_a_missing_file_names_the_source(tmp_path):
    with pytest.raises(RecipeError, match="an existing file") as info:
        open_reader(f"parquet:{tmp_path / 'nope.parquet'}", target="y")
    assert info.value.path == "data.source"


def test_single_class_is_refused(tmp_path, write_csv):
    from tests.data.helpers import prepared

    with pytest.raises(DataError, match="2 or more"):
        prepared(tmp_path / "d", {"source": f"csv:{write_csv([['a', 'y'], [1, 0], [5, 0]])}",
                                  "target": "y"})


def test_split_is_seeded_disjoint_and_stratified():
    y = next(open_reader("sklearn:digits").chunks()).labels
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
