"""The Runtime plug-in base: one inference engine for one package, numpy tensors by name."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from danlu.errors import DanluError
from danlu.serve.package import TensorSpec

__all__ = ["Runtime", "RuntimeInputError"]


class RuntimeInputError(DanluError):
    """The engine refused these inputs (e.g. an index out of range): the client's mistake, a 400."""


class Runtime(ABC):
    """Tensors in, tensors out. Implementations set `inputs`/`outputs` and must be thread-safe."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch; `outputs` picks output names (None = every declared output)."""
