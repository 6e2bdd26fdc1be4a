"""The deployable module: raw client values in, the head's outputs out, every fitted step inside.

`Packaged(features, net, head)`: each feature's in-graph part (normalizer, one-hot, token
packing) -> the network -> the head's decoding (softmax, label). Evaluation runs it, export
traces it, parity compares every runtime with it, the torch runtime serves it. `predict` feeds it
client values through the features' torch-free `encode`, the call the server makes too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.features.base import count, take

__all__ = ["Encoding", "Packaged", "predict"]


class Encoding(nn.Module):
    """Graph inputs (in feature order) -> the network's input: each feature's in-graph part,
    concatenated when there are several."""

    def __init__(self, features: list[Any]):
        super().__init__()
        self.features = list(features)  # a plain attribute: the fitted Feature objects
        self.pre = nn.ModuleList([f.module() for f in features])
        self.arity = [len(f.graph_inputs()) for f in features]

    @property
    def input_names(self) -> list[str]:
        return [s["name"] for f in self.features for s in f.graph_inputs()]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        parts, i = [], 0
        for module, n in zip(self.pre, self.arity, strict=True):
            parts.append(module(*inputs[i:i + n]))
            i += n
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def feed(self, values: dict[str, np.ndarray]) -> list[torch.Tensor]:
        """Client values by feature name -> graph input tensors (the features' `encode`)."""
        out = []
        for f in self.features:
            arrays = f.encode(values[f.name])
            out += [torch.from_numpy(np.ascontiguousarray(arrays[s["name"]]))
                    for s in f.graph_inputs()]
        return out

    def network_input(self, values: dict[str, np.ndarray]) -> torch.Tensor:
        """What the network trains on for these rows (encoded, then the in-graph parts)."""
        with torch.no_grad():
            return self(*self.feed(values))


class Packaged(nn.Module):
    """graph inputs -> Encoding -> net -> the head's outputs (e.g. probabilities, label)."""

    def __init__(self, features: list[Any], net: nn.Module, head: Any):
        super().__init__()
        self.head_spec = head  # a plain attribute: the Head object
        self.encoding, self.net, self.head = Encoding(features), net, head.module()

    @property
    def features(self) -> list[Any]:
        return self.encoding.features

    @property
    def input_names(self) -> list[str]:
        return self.encoding.input_names

    @property
    def output_names(self) -> list[str]:
        return [s["name"] for s in self.head_spec.outputs()]

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.head(self.net(self.encoding(*inputs)))

    def feed(self, values: dict[str, np.ndarray]) -> list[torch.Tensor]:
        return self.encoding.feed(values)


def predict(module: Packaged, values: dict[str, np.ndarray], batch: int | None = None
            ) -> tuple[np.ndarray, ...]:
    """The outputs for client values, in input order; batched (rows of similar cost together
    when a feature says what a row costs, e.g. text tokens), in inference mode."""
    n = count(values)
    batch = batch or getattr(module.net, "predict_batch", 1024)
    keys = [f.sort_key(values[f.name]) for f in module.features]
    keys = [k for k in keys if k is not None]
    order = np.argsort(keys[0], kind="stable") if keys else np.arange(n)
    parts: list[tuple[np.ndarray, ...]] = []
    module.eval()
    with torch.inference_mode():
        for start in range(0, n, batch):
            out = module(*module.feed(take(values, order[start:start + batch])))
            parts.append(tuple(o.float().numpy() if o.is_floating_point() else o.numpy()
                               for o in out))
    if not parts:
        return tuple(np.zeros((0,)) for _ in module.output_names)
    joined = [np.concatenate(p) for p in zip(*parts, strict=True)]
    result = []
    for a in joined:
        out = np.empty_like(a)
        out[order] = a
        result.append(out)
    return tuple(result)

