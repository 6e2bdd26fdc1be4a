"""The search space: dotted recipe paths -> trial.suggest_*, conditions (`when`), grids."""

from __future__ import annotations

import json
import math
from typing import Any

from danlu.errors import RecipeError
from danlu.recipe import Recipe, load_recipe

__all__ = ["check_space", "decode", "grid_space", "lookup", "suggest"]

# Optuna's categorical values must be None, bool, int, float or str: other choices (lists such
# as model.channels [16, 32]) travel as their JSON text and are decoded before use.
_SCALAR = (type(None), bool, int, float, str)


def _encode(choices: list[Any]) -> list[Any]:
    if all(isinstance(c, _SCALAR) for c in choices):
        return list(choices)
    return [json.dumps(c) for c in choices]


def decode(spec: dict[str, Any], value: Any) -> Any:
    """The recipe value of a suggested parameter (JSON text back to a list for list choices)."""
    if "choice" in spec and not all(isinstance(c, _SCALAR) for c in spec["choice"]):
        return json.loads(value)
    return value


def lookup(recipe: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a recipe dict (None if absent)."""
    node: Any = recipe
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _active(spec: dict[str, Any], chosen: dict[str, Any], base: dict[str, Any]) -> bool:
    """A `when` holds if every named path (already chosen in this trial, else the base recipe's
    value) is one of the listed values."""
    for path, allowed in (spec.get("when") or {}).items():
        value = chosen[path] if path in chosen else lookup(base, path)
        if value not in allowed:
            return False
    return True


def suggest(trial: Any, space: dict[str, dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """Draw one configuration: {dotted path: recipe value}, in the order the space lists them."""
    chosen: dict[str, Any] = {}
    for path, spec in space.items():
        if not _active(spec, chosen, base):
            continue
        if "choice" in spec:
            value = trial.suggest_categorical(path, _encode(spec["choice"]))
        elif "int" in spec:
            lo, hi = spec["int"]
            value = trial.suggest_int(path, lo, hi, step=spec.get("step", 1))
        elif "log_float" in spec:
            lo, hi = spec["log_float"]
            value = trial.suggest_float(path, lo, hi, log=True)
        else:
            lo, hi = spec["float"]
            value = trial.suggest_float(path, lo, hi, step=spec.get("step"))
        chosen[path] = decode(spec, value)
    return chosen


def grid_space(space: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """Optuna GridSampler's search space; a continuous range has no grid and is refused."""
    grid: dict[str, list[Any]] = {}
    for path, spec in space.items():
        if "choice" in spec:
            grid[path] = _encode(spec["choice"])
        elif "int" in spec:
            lo, hi = spec["int"]
            grid[path] = list(range(lo, hi + 1, spec.get("step", 1)))
        elif "float" in spec and spec.get("step"):
            lo, hi = spec["float"]
            n = math.floor((hi - lo) / spec["step"] + 1e-9)
            grid[path] = [round(lo + i * spec["step"], 12) for i in range(n + 1)]
        else:
            dist = "log_float" if "log_float" in spec else "float"
            lo, hi = spec[dist]
            raise RecipeError(
                f"tune.space.{path}", got={dist: [lo, hi]},
                expected="an explicit value list for grid search (a continuous range has no grid)",
                hint=f"write e.g. {{choice: [{lo}, {_mid(lo, hi, dist == 'log_float')}, {hi}]}}, "
                     "or use sampler: tpe / gp / random for ranges")
    return grid


def _mid(lo: float, hi: float, log: bool) -> float:
    return float(f"{(math.sqrt(lo * hi) if log else (lo + hi) / 2):.3g}")


def check_space(recipe: Recipe) -> None:
    """Fail before any trial runs: every path must exist in the recipe and take its values."""
    cfg = recipe.tune
    if cfg is None:
        raise RecipeError("tune", got=None, expected="a tune section with a search space",
                          hint="see docs/tuning.md, e.g. tune: {space: {train.optimizer.lr: "
                               "{log_float: [1.0e-4, 1.0e-1]}}}")
    if cfg.sampler == "grid":
        grid_space(cfg.space)
    base = recipe.to_dict()
    for path, spec in cfg.space.items():
        if path.split(".")[0] in ("tune", "data", "preprocess", "seed"):
            raise RecipeError(f"tune.space.{path}", got=path,
                              expected="a path under model, train or evaluate (trials reuse the "
                                       "run's data stage, so data and seed are fixed)")
        if lookup(base, path) is None:
            raise RecipeError(f"tune.space.{path}", got=path, expected="a key of the recipe",
                              hint=_did_you_mean(base, path))
        for value in _samples(spec):
            try:
                load_recipe(base, {path: value})
            except RecipeError as e:
                raise RecipeError(f"tune.space.{path}", got=value,
                                  expected=f"values the recipe accepts ({e})") from None


def _did_you_mean(base: dict[str, Any], path: str) -> str:
    from danlu.registry import closest

    parts = path.split(".")
    parent = lookup(base, ".".join(parts[:-1])) if len(parts) > 1 else base
    if isinstance(parent, dict):
        near = closest(parts[-1], list(parent))
        if near:
            return f"did you mean {'.'.join([*parts[:-1], near])!r}?"
        return f"keys there: {', '.join(parent)}"
    return "check the path against docs/recipes.md"


def _samples(spec: dict[str, Any]) -> list[Any]:
    """The end points of a range, or every choice: what the recipe must accept."""
    if "choice" in spec:
        return list(spec["choice"])
    kind = next(k for k in ("float", "log_float", "int") if k in spec)
    return list(spec[kind])
