"""GET /: the playground page, static HTML with the served models' contracts filled in."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from danlu.serve.package import Package

__all__ = ["playground_html"]


@cache
def _template() -> str:
    """static/playground.html, shipped as package data."""
    return resources.files("danlu.serve").joinpath("static/playground.html").read_text("utf-8")


def model_card(package: Package) -> dict[str, Any]:
    """What the page needs to build a form for one model: each feature's `form()` (a text box,
    a drawing pad, number fields, a choice), a table's raw columns (`columns`: one field
    each), else the schema-1 package's own hints."""
    forms = [f.form() for f in package.features]
    text = next((f for f in forms if f["widget"] == "text"), None)
    image = next((f for f in forms if f["widget"] == "image"), None)
    image_shape = image["shape"] if image else package.meta.get("image_shape")
    return {"name": package.name, "version": package.version, "task": package.task,
            "inputs": [s.to_json() for s in package.inputs],
            "outputs": [s.name for s in package.outputs], "features": forms,
            "labels": package.labels, "image_shape": image_shape,
            "columns": column_fields(package) if package.by_column else None,
            "text": {"max_length": text["max_length"]} if text else None,
            "pixel_max": (image["pixel_max"] if image else pixel_max(package)) if image_shape
            else None}


def column_fields(package: Package) -> list[dict[str, Any]]:
    """One form field per raw column, in column order: the widget of its feature's `form()`
    ("choice" with the known categories, "numbers" a number box, "text" a text box)."""
    owner = {}
    for f in package.features:
        form = f.form()
        for s in f.column_inputs():
            owner[s["name"]] = (f, form)
    fields = []
    for spec in package.columns:
        f, form = owner[spec.name]
        fields.append({"name": spec.name, "feature": f.name, "type": f.type,
                       "datatype": spec.datatype, "widget": form.get("widget"),
                       **({"choices": form["choices"]} if "choices" in form else {})})
    return fields


def pixel_max(package: Package) -> float:
    """The ink value of a pixel in a schema-1 package: its `pixel_max`, else guessed from the
    fitted normalization means (sklearn digits: means up to ~12 -> 0..16; 8-bit images -> 255)."""
    if isinstance(package.meta.get("pixel_max"), (int, float)):
        return float(package.meta["pixel_max"])
    shift = (package.meta.get("preprocessing") or {}).get("normalize", {}).get("shift") or [1.0]
    top = max(float(v) for v in shift) if isinstance(shift, list) and shift else 1.0
    return 1.0 if top <= 1.0 else 16.0 if top <= 16.0 else 255.0


def playground_html(packages: list[Package]) -> str:
    """The page with the model list inlined (no extra request, works behind auth)."""
    cards = json.dumps([model_card(p) for p in packages]).replace("</", "<\\/")
    return _template().replace("/*__MODELS__*/[]", cards)
