"""Data: sources, split, normalization (the `data` and `preprocess` recipe sections)."""

from __future__ import annotations

from typing import Any

from danlu.data.config import DataConfig, PreprocessConfig, SplitConfig

__all__ = ["DataConfig", "PreprocessConfig", "SplitConfig", "data"]


def __getattr__(name: str) -> Any:
    # The stage verb imports torch: load it on first use so the config stays cheap to import.
    if name == "data":
        from danlu.data.stage import data

        return data
    raise AttributeError(f"module 'danlu.data' has no attribute {name!r}")
