"""Dotted `KEY=VALUE` overrides and pydantic errors as RecipeErrors naming the dotted path and the
fix: what `danlu run` and `danlu serve` share (pydantic and yaml only)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from danlu.errors import RecipeError
from danlu.registry import closest

__all__ = ["apply_override", "parse_overrides", "section_error"]


def parse_overrides(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """`["train.epochs=5", ...]` -> {"train.epochs": 5}; values are YAML scalars/lists."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecipeError("override", got=item, expected="KEY=VALUE, e.g. train.epochs=5")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise RecipeError(".".join(parts[: i + 1]), got=child,
                              expected=f"a section to hold {'.'.join(parts[i + 1:])}")
        node = child
    node[parts[-1]] = value


# ---- turning pydantic's errors into one RecipeError naming the dotted path and the fix ----

def section_error(err: ValidationError, raw: dict[str, Any], root: type[BaseModel]) -> RecipeError:
    """The first validation error of `raw` (validated as `root`) as a RecipeError naming the
    dotted path and the fix; the others are listed after it."""
    errors = err.errors()
    first = _one(errors[0], raw, root)
    if len(errors) > 1:
        rest = "; ".join(str(_one(e, raw, root)) for e in errors[1:4])
        first = RecipeError(first.path, got=first.got, expected=first.expected,
                            hint="; ".join(h for h in (first.hint, f"also: {rest}") if h))
    return first


def _one(e: dict[str, Any], raw: dict[str, Any], root: type[BaseModel]) -> RecipeError:
    loc = [str(p) for p in e["loc"]]
    path = ".".join(loc) or "recipe"
    etype = e["type"]
    if etype == "extra_forbidden":
        valid = _fields_at(loc[:-1], raw, root)
        near = closest(loc[-1], valid)
        hint = (f"did you mean {'.'.join([*loc[:-1], near])!r}?" if near
                else f"valid keys here: {', '.join(valid)}")
        where = ".".join(loc[:-1]) or "the recipe"
        return RecipeError(path, got=e.get("input"), expected=f"a known key of {where}", hint=hint)
    if etype == "unknown_arch":
        ctx = e.get("ctx", {})
        return RecipeError(f"{path}.arch", got=ctx.get("arch"),
                           expected=f"a model: one of {ctx.get('names')}",
                           hint=ctx.get("hint", "").strip(" ()") or None)
    if etype == "literal_error":
        expected = e["msg"].removeprefix("Input should be ")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        near = closest(str(e.get("input")), choices)
        return RecipeError(path, got=e.get("input"), expected=expected,
                           hint=f"did you mean {near!r}?" if near else None)
    msg = e["msg"].removeprefix("Value error, ").removeprefix("expected ")
    return RecipeError(path, got=e.get("input"), expected=msg[0].lower() + msg[1:])


def _fields_at(loc: list[str], raw: dict[str, Any], root: type[BaseModel]) -> list[str]:
    """Field names of the section at `loc` (for "did you mean")."""
    cls: type[BaseModel] | None = root
    node: Any = raw
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        if cls is None:
            return []
        field = cls.model_fields.get(part)
        if field is not None and _is_model_section(field.annotation):
            from danlu.models.base import models
            from danlu.models.config import DEFAULT_ARCH

            arch = node.get("arch", DEFAULT_ARCH) if isinstance(node, dict) else DEFAULT_ARCH
            cls = models[arch].config if arch in models else None
            continue
        ann = getattr(field, "annotation", None)
        cls = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return sorted(cls.model_fields) if cls else []


def _is_model_section(annotation: Any) -> bool:
    """True for a `model:` field (a ModelSection, possibly Optional)."""
    from typing import get_args

    from danlu.models.config import ModelSection

    if isinstance(annotation, type) and issubclass(annotation, ModelSection):
        return True
    return any(_is_model_section(a) for a in get_args(annotation))
