"""A table's own columns side by side: numbers, a small and a large category, and free text,
through `danlu init` -> `danlu.run` (data, train, evaluate, export with parity) on a real CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from danlu.data.inspect import init_recipe
from danlu.features.text import hashed_ngrams

GOOD = ["excellent battery and a bright screen", "works great, fast delivery",
        "solid build quality and great value"]
BAD = ["stopped working after a week", "arrived broken and support never answered",
       "cheap plastic, poor sound, returned it"]


def write_reviews(path: Path, rows: int = 900) -> Path:
    """Reviews whose text carries the label; a price; a brand (3 values); a shop code (90)."""
    rng = np.random.default_rng(0)
    filler = ["the", "it", "was", "and", "really", "quite"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "price", "brand", "shop", "ok"])
        for _ in range(rows):
            y = int(rng.integers(2))
            text = (GOOD if y else BAD)[rng.integers(3)] + f" item {rng.integers(1000)} " \
                + " ".join(rng.choice(filler, 4))
            w.writerow([text, f"{rng.normal(50, 10):.2f}", ["acme", "zeta", "nova"][rng.integers(3)],
                        f"S{rng.integers(90):02d}", ["no", "yes"][y]])
    return path


def test_hashed_ngrams_are_stable_and_cut_at_max_tokens() -> None:
    ids, cut = hashed_ngrams("Great screen, great battery", buckets=1 << 15, max_tokens=128)
    assert len(ids) == 4 + 3 and not cut  # 4 words, 3 bigrams
    assert ids[0] == ids[2] and all(0 < i < 1 << 15 for i in ids)  # "great" twice, never 0
    # crc32, not Python's salted hash(): the same ids in every process (the server's too)
    assert ids == hashed_ngrams("great SCREEN great battery", 1 << 15, 128)[0]
    assert hashed_ngrams("a b c d e f", 1 << 15, 5) == (hashed_ngrams("a b c d e", 1 << 15, 5)[0], True)


@pytest.mark.slow
def test_text_beside_numbers_and_categories_trains_and_exports(tmp_path: Path) -> None:
    import danlu
    from danlu.runs import read_json

    src = write_reviews(tmp_path / "reviews.csv")
    text = init_recipe(f"csv:{src}", "ok")
    assert "review: text" in text and "shop: category" in text and "arch: mlp" in text
    (tmp_path / "r.yaml").write_text(text)
    res = danlu.run(str(tmp_path / "r.yaml"), out=tmp_path / "runs",
                    overrides=["train.epochs=8", "train.batch_size=64",
                               "train.optimizer.lr=0.01"])
    features = {f["name"]: f for f in read_json(res.run_dir / "train/model/model.json")["features"]}
    assert features["review"]["state"]["encoder"] == "hashing"
    assert len(features["shop"]["state"]["vocabulary"]) > 64  # a learned embedding
    # the text carries the label: far above the 50% a model without it would reach
    assert res.metrics["test"]["accuracy"] > 0.85
    assert res.metrics["export"]["parity_label_agreement"] == 1.0


@pytest.mark.parametrize(("columns", "arch"), [(["review"], "transformer"),
                                                (["review", "price"], "mlp")])
def test_init_gives_text_alone_to_the_transformer_and_a_table_to_the_mlp(
        tmp_path: Path, columns: list[str], arch: str) -> None:
    src = write_reviews(tmp_path / "all.csv", rows=300)
    with src.open() as f:
        rows = list(csv.DictReader(f))
    out = tmp_path / "some.csv"
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, [*columns, "ok"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    assert f"arch: {arch}" in init_recipe(f"csv:{out}", "ok")
