"""Recipe = the stage configs composed: load YAML, upgrade old versions, apply overrides, dump."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from danlu.compress.config import CompressConfig
from danlu.data.config import DataConfig, PreprocessConfig, Section, upgrade_v1
from danlu.errors import RecipeError
from danlu.evaluate.config import EvaluateConfig
from danlu.export.config import ExportConfig
from danlu.models.config import DEFAULT_ARCH, ModelConfig
from danlu.overrides import apply_override, parse_overrides, section_error
from danlu.serve.config import ServeConfig
from danlu.track.config import TrackConfig
from danlu.train.config import TrainConfig
from danlu.tune.config import TuneConfig

__all__ = ["CURRENT_VERSION", "Recipe", "load_recipe", "parse_overrides", "recipe_error"]

# 2: data.features (column -> feature type) and data.target {column, head} replace
#    data.text_field and data.image_shape; model sections validate through the model registry.
CURRENT_VERSION = 2


class Recipe(Section):
    """A whole job: one section per stage, each section's class named after it."""

    version: Literal[2] = CURRENT_VERSION
    name: str = Field("danlu", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # One seed drives the split, the initial weights and the batch order.
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)  # built on use: it checks registries
    preprocess: PreprocessConfig = PreprocessConfig()
    model: ModelConfig = Field(default_factory=lambda: {"arch": DEFAULT_ARCH},
                               validate_default=True)
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()
    serve: ServeConfig = ServeConfig()
    # Hyperparameter search (optional): absent or `enabled: false` = no tune stage in `danlu run`.
    tune: TuneConfig | None = None
    # Optional: compression variants of the trained model (absent = no compress stage).
    compress: CompressConfig | None = None
    # Experiment tracking (TensorBoard event files, an MLflow run); off by default. Not in any
    # stage's cache key: tracking changes what is recorded, never a result.
    track: TrackConfig = TrackConfig()

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
        apply_override(raw, key, value)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise recipe_error(e, raw) from None


def recipe_error(err: ValidationError, raw: dict[str, Any]) -> RecipeError:
    """The first validation error of a recipe as a RecipeError (dotted path, "did you mean")."""
    return section_error(err, raw, Recipe)
