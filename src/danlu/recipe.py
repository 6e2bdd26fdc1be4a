"""Recipe = the stage configs composed: load YAML, upgrade old versions, apply overrides, dump."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from danlu.compress.config import CompressConfig
from danlu.data.config import DataConfig, PreprocessConfig, Section, upgrade_v1
from danlu.errors import RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.export.config import ExportConfig
from danlu.models.config import DEFAULT_ARCH, ModelConfig
from danlu.registry import closest
from danlu.serve.config import ServeConfig
from danlu.train.config import TrainConfig
from danlu.tune.config import TuneConfig

__all__ = ["CURRENT_VERSION", "Recipe", "load_recipe", "parse_overrides"]

# 2: data.features (column -> feature type) and data.target {column, head} replace
#    data.text_field and data.image_shape; model sections validate through the model registry.
CURRENT_VERSION = 2


class Recipe(Section):
    """A whole job: one section per stage, each section's class named after it."""

    version: Literal[2] = CURRENT_VERSION
    name: str = Field("danlu", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # One seed drives the split, the initial weights and the batch order.
    seed: int = 0
    data: DataConfig = DataConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    model: ModelConfig = {"arch": DEFAULT_ARCH}
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    # Hyperparameter search (optional): absent or `enabled: false` = no tune stage in `danlu run`.
    tune: TuneConfig | None = None
    # Optional: compression variants of the trained model (absent = no compress stage).
    compress: CompressConfig | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if v != CURRENT_VERSION:
            raise ValueError(f"this danlu reads recipe versions up to {CURRENT_VERSION}")
        return v

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def dump(self) -> str:
        """The resolved recipe as YAML (every default written out)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def section_hash(self, *keys: str) -> str:
        """sha256 of the named top-level sections, for stage cache keys."""
        d = self.to_dict()
        blob = json.dumps({k: d[k] for k in keys}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older recipe to CURRENT_VERSION (a recipe without `version` is version 1)."""
    raw = dict(raw)
    if raw.get("version", 1) == 1:
        if isinstance(raw.get("data"), dict):
            raw["data"] = upgrade_v1(raw["data"])
        raw["version"] = 2
    return raw


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


def _apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
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


def load_recipe(source: str | Path | dict[str, Any] | Recipe,
                overrides: list[str] | dict[str, Any] | None = None) -> Recipe:
    """Read a recipe (YAML path, dict or Recipe), apply dotted overrides, validate it."""
    if isinstance(source, Recipe):
        raw = source.to_dict()
    elif isinstance(source, dict):
        raw = json.loads(json.dumps(source))  # a deep copy we may edit
    else:
        path = Path(source)
        if not path.is_file():
            raise RecipeError("recipe", got=str(path), expected="an existing YAML file")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise RecipeError("recipe", got=str(path), expected=f"valid YAML ({e})") from None
        if not isinstance(raw, dict):
            raise RecipeError("recipe", got=type(raw).__name__, expected="a mapping of sections")
    raw = upgrade(raw)
    for key, value in parse_overrides(overrides).items():
        _apply_override(raw, key, value)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise recipe_error(e, raw) from None


# ---- turning pydantic's errors into one RecipeError naming the dotted path and the fix ----

def recipe_error(err: ValidationError, raw: dict[str, Any]) -> RecipeError:
    """The first validation error as a RecipeError; the others are listed after it."""
    errors = err.errors()
    first = _one(errors[0], raw)
    if len(errors) > 1:
        rest = "; ".join(str(_one(e, raw)) for e in errors[1:4])
        first = RecipeError(first.path, got=first.got, expected=first.expected,
                            hint="; ".join(h for h in (first.hint, f"also: {rest}") if h))
    return first


def _one(e: dict[str, Any], raw: dict[str, Any]) -> RecipeError:
    loc = [str(p) for p in e["loc"]]
    path = ".".join(loc) or "recipe"
    kind = e["type"]
    if kind == "extra_forbidden":
        valid = _fields_at(loc[:-1], raw)
        near = closest(loc[-1], valid)
        hint = (f"did you mean {'.'.join([*loc[:-1], near])!r}?" if near
                else f"valid keys here: {', '.join(valid)}")
        where = ".".join(loc[:-1]) or "the recipe"
        return RecipeError(path, got=e.get("input"), expected=f"a known key of {where}", hint=hint)
    if kind == "unknown_arch":
        ctx = e.get("ctx", {})
        return RecipeError(f"{path}.arch", got=ctx.get("arch"),
                           expected=f"a model: one of {ctx.get('names')}",
                           hint=ctx.get("hint", "").strip(" ()") or None)
    if kind == "literal_error":
        expected = e["msg"].removeprefix("Input should be ")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        near = closest(str(e.get("input")), choices)
        return RecipeError(path, got=e.get("input"), expected=expected,
                           hint=f"did you mean {near!r}?" if near else None)
    msg = e["msg"].removeprefix("Value error, ")
    return RecipeError(path, got=e.get("input"), expected=msg[0].lower() + msg[1:])


def _fields_at(loc: list[str], raw: dict[str, Any]) -> list[str]:
    """Field names of the section at `loc` (for "did you mean")."""
    cls: type[BaseModel] | None = Recipe
    node: Any = raw
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        if cls is None:
            return []
        field = cls.model_fields.get(part)
        if field is not None and _is_model_section(field.annotation):
            from danlu.models import models

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
