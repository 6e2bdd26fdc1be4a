"""Before anything is built: the baseline, the variants (the recipe's or the model family's),
each checked against what the family takes, and the context every variant is built with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from danlu.compress.config import CompressConfig, VariantConfig, check_parents
from danlu.compress.context import Context
from danlu.compress.variants import Variant, check_variants, takes_pruning
from danlu.errors import RecipeError
from danlu.runs import Run

__all__ = ["check_budget", "prepare", "resolve_variants"]


def check_budget(cfg: CompressConfig, head: Any) -> None:
    """compress.budget names a metric the head scores, and no classification-only limit on a
    head without labels (a RecipeError naming the key and the fix)."""
    b = cfg.budget
    if b.metric is not None and b.metric not in head.metric_names:
        raise RecipeError("compress.budget.metric", got=b.metric,
                          expected=f"a metric of the {head.type} head: "
                                   f"{', '.join(head.metric_names)}")
    if "accuracy" not in head.metric_names:  # no labels: the label-only limits mean nothing
        for key in ("max_accuracy_drop", "min_label_agreement"):
            # changed from its default (a resolved recipe writes every default out)
            if getattr(b, key) != type(b).model_fields[key].default:
                raise RecipeError(f"compress.budget.{key}", got=getattr(b, key),
                                  expected=f"no {key}: the {head.type} head ({head.task}) "
                                           "predicts values, not labels",
                                  hint=f"limit compress.budget.max_metric_drop on "
                                       f"{b.metric or head.main_metric} instead (e.g. 0.05: "
                                       "at most 5% worse than the baseline)")


def resolve_variants(cfg: CompressConfig, variants: list[VariantConfig] | None,
                     fam: Any) -> tuple[list[VariantConfig], str]:
    """(variants, where they come from): the given list, the recipe's, else the family's."""
    if variants is not None:
        return list(variants), "given"
    if cfg.variants is not None:
        return list(cfg.variants), "recipe"
    defaults = [VariantConfig.model_validate(d) for d in fam.compress_variants()]
    check_parents(defaults)
    return defaults, f"the {fam.name} family's defaults (compress.variants not set)"


def _takeable(variants: list[VariantConfig], base: Any) -> list[VariantConfig]:
    """The family's default variants without the pruning this model does not take (a k-member
    MLP takes no structured pruning) and the variants made from those."""
    fam, model = base.family, base.model
    dropped: set[str] = set()
    kept = []
    for v in variants:
        if (v.prune and not takes_pruning(fam, model, v.prune)) or v.from_ in dropped:
            dropped.add(v.name)
        else:
            kept.append(v)
    return kept


def prepare(run: Run, cfg: CompressConfig, variants: list[VariantConfig] | None, folder: Path,
            check: Callable[[Variant], None] = lambda base: None,
            ) -> tuple[Context, Variant, list[VariantConfig], str]:
    """The baseline (packaged in `folder`), the checked variants and what they are built with;
    `check(baseline)` runs before anything is built."""
    from danlu.compress.baseline import load_baseline
    from danlu.compress.package import package_baseline
    from danlu.data.stage import load_splits

    splits = load_splits(run)
    check_budget(cfg, splits.head)
    base = load_baseline(run, cfg, splits, folder)
    check(base)
    variants, source = resolve_variants(cfg, variants, base.family)
    if source.startswith("the ") and base.model is not None:
        kept = _takeable(variants, base)
        if len(kept) < len(variants):
            source += (f"; left out, this model takes no such pruning: "
                       f"{', '.join(v.name for v in variants if v not in kept)}")
        variants = kept
    try:
        check_variants(base, variants)
    except RecipeError as e:
        if source.startswith("the "):  # the user wrote none of these: say whose they are
            raise RecipeError(e.path, got=e.got, expected=e.expected,
                              hint=f"{e.hint + '; ' if e.hint else ''}these are {source}: list "
                                   "compress.variants to choose others") from None
        raise
    if base.model is not None:
        features, head = base.model.features, base.model.head
    else:
        from danlu.serve.package import load_package

        features, head = load_package(folder).features, splits.head
    ctx = Context(run, cfg, splits, features, head, base.family, folder)
    if base.model is not None:
        base.meta = package_baseline(ctx, base)
    return ctx, base, variants, source
