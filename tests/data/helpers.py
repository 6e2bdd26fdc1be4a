"""Run the data preparation of a recipe dict into a folder and read back what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from danlu.data.prepare import prepare
from danlu.recipe import load_recipe
from danlu.runs import read_json


def prepared(out: Path, data: dict[str, Any], preprocess: dict[str, Any] | None = None,
             seed: int = 0) -> dict[str, Any]:
    """prepare() for {data, preprocess}; returns cleaning.json, info.json and split.json."""
    r = load_recipe({"data": data, "preprocess": preprocess or {}, "seed": seed,
                     "model": {"arch": "mlp"}})
    out.mkdir(parents=True, exist_ok=True)
    prepare(out, r.data, r.preprocess, r.seed)
    return {k: read_json(out / f"{k}.json") for k in ("cleaning", "info", "split", "normalizer")}
