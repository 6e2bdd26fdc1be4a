"""Typed features and heads: how data reaches a model and how it leaves it (DESIGN.md §3a).

A feature type (`features`, one module each: number, image, category, binary, text) owns how a
raw column is recognised, checked, fitted on the training split, encoded without torch and put
into the exported graph. A head (`heads`: category, number) owns the output: loss, metrics,
decoding. Stages ask them; adding a type is one module that registers itself (a plug-in may
register from anywhere).

Importing this package is cheap (numpy only); torch is imported inside `module()` methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from danlu.features.base import features, heads

if TYPE_CHECKING:
    from danlu.features.base import Feature, Head

__all__ = ["Feature", "Head", "build_features", "column_inputs", "features", "heads",
           "load_features", "load_head"]


def _builtins() -> None:
    # imported to register themselves
    from danlu.features import binary, category, image, number, regression, text  # noqa: F401


features.builtins(_builtins)
heads.builtins(_builtins)


def build_features(entries: list[tuple[str, str, list[str], dict[str, Any]]]) -> list[Feature]:
    """Features from (name, type, columns, options) in recipe order. Types with a `group` gather
    all their columns into one feature named after it (a table's numbers: `features`)."""
    from danlu.errors import RecipeError

    out: list[Feature] = []
    grouped: dict[str, Feature] = {}
    for name, type_name, columns, options in entries:
        cls = features[type_name]
        if cls.group is None:
            out.append(cls(name, columns, options))
            continue
        f = grouped.get(type_name)
        if f is None:
            f = grouped[type_name] = cls(cls.group, [], options)
            out.append(f)
        elif options != f.options:
            raise RecipeError(f"data.features.{name}", got=options, expected=f"the options of the "
                              f"other {type_name} columns ({f.options}): they form one input")
        f.columns.extend(columns)
    return out


def load_features(described: list[dict[str, Any]], folder: Any = None) -> list[Feature]:
    """Features as `Feature.describe()` wrote them (data/features.json, model.json), fitted."""
    return [features[d["type"]](d["name"], d["columns"], d.get("options"))
            .load_state_dict(d.get("state") or {}, folder) for d in described]


def column_inputs(features: list[Feature], order: list[str] | None = None) -> list[dict[str, Any]]:
    """The raw row a client may send instead of the features' inputs: every feature's
    `column_inputs()`, in `order` (the source's column order, e.g. the recipe's data.features)
    where it names them, the rest after them in feature order."""
    specs = [s for f in features for s in f.column_inputs()]
    rank = {name: i for i, name in enumerate(order or [])}
    return sorted(specs, key=lambda s: rank.get(s["name"], len(rank)))  # stable: feature order


def load_head(described: dict[str, Any]) -> Head:
    """A head as `Head.describe()` wrote it (data/features.json, model.json), fitted."""
    return heads[described["type"]](described.get("column"), described.get("labels", []),
                                    described.get("options")).load_state_dict(
        described.get("state") or {})


def __getattr__(name: str) -> Any:
    if name in ("Feature", "Head"):
        from danlu.features import base

        return getattr(base, name)
    raise AttributeError(f"module 'danlu.features' has no attribute {name!r}")
