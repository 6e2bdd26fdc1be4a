"""Model families: one registry entry object per family (config, build, load, accepted feature
types, runtimes, compression hooks). A family is one module that registers itself; plug-ins
register from anywhere (`@models.register("name")` on a `Family` subclass)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from danlu.models.base import models

if TYPE_CHECKING:
    from danlu.models.base import Family

__all__ = ["Family", "family", "models"]


def _builtins() -> None:
    from danlu.models import cnn, mlp, transformer  # noqa: F401  (they register)



models.builtins(_builtins)


def family(cfg: Any) -> Family:
    """The family of a model config (its `arch`)."""
    return models[cfg.arch]


def __getattr__(name: str) -> Any:
    if name == "Family":
        from danlu.models.base import Family

        return Family
    raise AttributeError(f"module 'danlu.models' has no attribute {name!r}")
