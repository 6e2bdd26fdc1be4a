"""Pruning: unstructured magnitude (exact zeros) and structured (physically smaller layers)."""

from danlu.compress.prune.structured import prune_structured
from danlu.compress.prune.unstructured import cubic_sparsity, prune_unstructured, sparsity_report

__all__ = ["cubic_sparsity", "prune_structured", "prune_unstructured", "sparsity_report"]
