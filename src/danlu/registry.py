"""Registry: a dict filled by a decorator; a miss names the choices and the closest one."""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from danlu.errors import RecipeError

T = TypeVar("T")

__all__ = ["PLUGIN_GROUP", "Registry", "closest", "load_plugins"]

# Plug-ins (feature types, heads, model families, source schemes, ... defined outside danlu):
# modules named by this entry-point group of installed distributions, or by the DANLU_PLUGINS
# environment variable (comma-separated module names), are imported before the first registry
# lookup, so `danlu run`, `danlu serve` and tuning workers all know them.
PLUGIN_GROUP = "danlu.plugins"
_plugins_loaded = False


def load_plugins() -> None:
    """Import every plug-in module once (entry points, then DANLU_PLUGINS)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=PLUGIN_GROUP):
        ep.load()
    for name in os.environ.get("DANLU_PLUGINS", "").split(","):
        if name.strip():
            importlib.import_module(name.strip())


def closest(word: str, choices: list[str]) -> str | None:
    """The choice closest to `word` by edit similarity, or None when nothing is close."""
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


class Registry(Generic[T]):
    """Named plug-ins of one kind (models, optimizers, ...), filled by `@registry.register(name)`."""

    def __init__(self, kind: str, path: str, builtins: Callable[[], object] | None = None):
        self.kind, self.path = kind, path  # path: the recipe key that selects an entry
        self._entries: dict[str, T] = {}
        # Imports the modules that register the built-in entries, on first lookup (so that
        # importing the registry stays cheap and plug-ins may register before or after).
        self._builtins = builtins

    def builtins(self, load: Callable[[], object]) -> None:
        """Set what imports the built-in entries (run on the first lookup)."""
        self._builtins = load

    def _load(self) -> None:
        if self._builtins is not None:
            load, self._builtins = self._builtins, None
            load()
        load_plugins()

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj
        return add

    def __getitem__(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            names = sorted(self._entries)
            near = closest(name, names)
            hint = f"did you mean {near!r}?" if near else None
            raise RecipeError(self.path, got=name,
                              expected=f"a {self.kind}: one of {', '.join(names)}", hint=hint)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def unregister(self, name: str) -> None:
        """Remove an entry (plug-ins registered by tests clean up after themselves)."""
        self._entries.pop(name, None)
