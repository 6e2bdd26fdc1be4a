"""Run the data preparation of a recipe dict into a folder and read back what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from danlu.data.prepare import prepare
from danlu.recipe import load_recipe
from danlu.runs import read_json


def prepared(out: Path, data: dict[str, Any], preprocess: dict[str, Any] | None = None,
             seed: int = 0) -> dict[str, Any]:
    """prepare() for {data, preprocess}; returns cleaning.json, info.json, split.json,
    features.json and (`normalizer`) the fitted normalizer of its number/image feature."""
    r = load_recipe({"data": data, "preprocess": preprocess or {}, "seed": seed,
                     "model": {"arch": "mlp"}})
    out.mkdir(parents=True, exist_ok=True)
    prepare(out, r.data, r.preprocess, r.seed)
    r = {k: read_json(out / f"{k}.json") for k in ("cleaning", "info", "split", "features")}
    norms = [f["state"]["normalize"] for f in r["features"]["features"] if "normalize" in f["state"]]
    r["normalizer"] = norms[0] if norms else None
    return r
