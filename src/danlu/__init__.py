"""danlu: one recipe from data to a served model (preprocess, train, evaluate, export, serve).

The stage verbs are imported on first use, so `import danlu` (and the server) stays free of torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# The stage verbs live in their packages, named after their recipe sections:
# danlu.data.data, danlu.train.train, danlu.evaluate.evaluate, danlu.export.export, danlu.serve.serve.
__all__ = [
    "DanluError",
    "DataError",
    "GateError",
    "ParityError",
    "Recipe",
    "RecipeError",
    "Run",
    "RunResult",
    "__version__",
    "load_recipe",
    "run",
]

_LAZY = {
    "run": ("danlu.pipeline", "run"),
    "RunResult": ("danlu.pipeline", "RunResult"),
    "load_recipe": ("danlu.recipe", "load_recipe"),
    "Recipe": ("danlu.recipe", "Recipe"),
    "Run": ("danlu.runs", "Run"),
    "DanluError": ("danlu.errors", "DanluError"),
    "RecipeError": ("danlu.errors", "RecipeError"),
    "DataError": ("danlu.errors", "DataError"),
    "GateError": ("danlu.errors", "GateError"),
    "ParityError": ("danlu.errors", "ParityError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'danlu' has no attribute {name!r}")
