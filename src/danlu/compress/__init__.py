"""Compression: pruning, quantization and distillation of a run's model, each measured and gated."""

from __future__ import annotations

from typing import Any

from danlu.compress.config import (
    BudgetConfig,
    CompressConfig,
    DistillConfig,
    LatencyConfig,
    PruneConfig,
    QuantizeConfig,
    SearchConfig,
    VariantConfig,
)

__all__ = ["BudgetConfig", "CompressConfig", "DistillConfig", "LatencyConfig", "PruneConfig",
           "QuantizeConfig", "SearchConfig", "VariantConfig", "compress"]


def __getattr__(name: str) -> Any:
    # The stage verb imports torch: load it on first use so the config stays cheap to import.
    if name == "compress":
        from danlu.compress.stage import compress

        return compress
    raise AttributeError(f"module 'danlu.compress' has no attribute {name!r}")
