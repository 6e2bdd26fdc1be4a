"""Evaluation: the `evaluate` recipe section, metrics and the gate."""

from __future__ import annotations

from typing import Any

from danlu.evaluate.config import EvaluateConfig

__all__ = ["EvaluateConfig", "evaluate"]


def __getattr__(name: str) -> Any:
    # The stage verb imports torch: load it on first use so the config stays cheap to import.
    if name == "evaluate":
        from danlu.evaluate.stage import evaluate

        return evaluate
    raise AttributeError(f"module 'danlu.evaluate' has no attribute {name!r}")
