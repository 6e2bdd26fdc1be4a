"""The Runtime plug-in base: one inference engine for one package, numpy tensors by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from danlu.errors import DanluError
from danlu.serve.config import ServeConfig
from danlu.serve.package import TensorSpec
from danlu.threads import share

__all__ = ["TRUNCATED", "Runtime", "RuntimeInputError", "intra_op_threads"]

# The extra per-row output of text runtimes: True where the tokenizer cut the text to
# max_length. Batched and split like any output, then reported by the protocols (never sent
# as a tensor).
TRUNCATED = "__truncated__"


class RuntimeInputError(DanluError):
    """The engine refused these inputs (e.g. an index out of range): the client's mistake, a 400."""


class Runtime(ABC):
    """Tensors in, tensors out. Implementations set `inputs`/`outputs` and must be thread-safe."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    name: str = ""  # the runtime name it was loaded as (load_runtime sets it)
    # What decides its numbers besides the model (threads, dtype, session settings): export
    # records it beside its measurements, `danlu serve` builds the same.
    options: dict[str, Any] = {}

    def run_rows(self, values: dict[str, np.ndarray], outputs: list[str] | None = None,
                 batch: int = 256) -> dict[str, np.ndarray]:
        """`run` over many rows in batches of `batch` (export's parity, compress's measurement,
        `danlu evaluate` of a package), outputs joined in row order."""
        from danlu.features.base import count, take

        parts = [self.run(take(values, slice(i, i + batch)), outputs)
                 for i in range(0, count(values), batch)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}

    def describe(self) -> dict[str, Any]:
        """{"runtime", "class", "options", "threads"}: what was loaded. `options` decide the
        numbers (artifact, dtype, session settings) and must match what export measured;
        `threads` is the deployment's choice (the server shares cores among batches)."""
        cls = type(self)
        options = {k: v for k, v in self.options.items() if k != "intra_op_threads"}
        return {"runtime": self.name, "class": f"{cls.__module__}.{cls.__qualname__}",
                "options": options, "threads": self.options.get("intra_op_threads")}

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch; `outputs` picks output names (None = every declared output)."""


def intra_op_threads(cfg: ServeConfig) -> int:
    """Threads per inference call, one policy for every runtime: `intra_op_threads`, else the
    cores shared among the batches that may run at once on this machine: `workers` server
    processes x `inference_workers` batches each (danlu.threads.share)."""
    return cfg.intra_op_threads or share(cfg.workers * cfg.inference_workers)
