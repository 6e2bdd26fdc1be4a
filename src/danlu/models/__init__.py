"""Model families: one registry entry object per family (config, build, load, accepted feature
types, runtimes, compression hooks). A family is one module that registers itself; plug-ins
register from anywhere (`@models.register("name")` on a `Family` subclass)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from danlu.registry import Registry

if TYPE_CHECKING:
    from danlu.models.base import Family

__all__ = ["Family", "family", "models"]


def _builtins() -> None:
    from danlu.models import cnn, mlp, transformer  # noqa: F401  (they register)



class _Families(Registry):
    """A Registry whose decorator takes a Family class and stores one instance of it."""

    def register(self, name: str):
        add = super().register(name)

        def register_class(cls: type[Family]) -> type[Family]:
            cls.name = name
            add(cls())
            return cls

        return register_class


models: Registry[Family] = _Families("model", "model.arch", _builtins)


def family(cfg: Any) -> Family:
    """The family of a model config (its `arch`)."""
    return models[cfg.arch]


def __getattr__(name: str) -> Any:
    if name == "Family":
        from danlu.models.base import Family

        return Family
    raise AttributeError(f"module 'danlu.models' has no attribute {name!r}")
