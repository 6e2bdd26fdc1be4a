"""Recipe section `evaluate` (pydantic only, no torch)."""

from __future__ import annotations

import difflib

from pydantic import Field, field_validator

from danlu.data.config import Section

__all__ = ["GATE_METRICS", "EvaluateConfig"]

# Test-split metrics a gate may name (higher is better for each).
GATE_METRICS = ("accuracy", *(f"{m}_{a}" for m in ("precision", "recall", "f1")
                              for a in ("macro", "micro", "weighted")))


class EvaluateConfig(Section):
    # Minimum test-split values, e.g. {accuracy: 0.95}; a miss stops packaging (non-zero exit).
    gate: dict[str, float] = Field(default_factory=dict)

    @field_validator("gate")
    @classmethod
    def _known_metrics(cls, v: dict[str, float]) -> dict[str, float]:
        for name, minimum in v.items():
            if name not in GATE_METRICS:
                near = difflib.get_close_matches(name, GATE_METRICS, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(f"gate metric {name!r} is not one of {', '.join(GATE_METRICS)}{hint}")
            if not 0 <= minimum <= 1:
                raise ValueError(f"gate minimum for {name} must be in [0, 1], got {minimum}")
        return v
