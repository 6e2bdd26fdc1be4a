"""`danlu init`: read a table once (streaming), type every column by the feature types'
`recognise` (the data stage infers the same way when a recipe declares no features), and write a
commented starter recipe with the evidence for each choice."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from danlu.data.features import ColumnSummary, infer_features
from danlu.data.problems import no_rows, one_class
from danlu.data.readers import label_name, open_reader, schemes
from danlu.errors import DataError, RecipeError

__all__ = ["init_recipe", "inspect_table", "starter_recipe"]

MAX_CLASSES = 50     # a target with more distinct values looks like regression
IMBALANCE = 3.0      # largest / smallest class share above which accuracy misleads


def inspect_table(source: str, target: str, chunk_rows: int = 200_000
                  ) -> tuple[dict[str, ColumnSummary], dict[str, int]]:
    """Every column summarized (cells as text) over the whole file, and the target's class counts."""
    tables = [n for n in schemes.names() if getattr(schemes[n], "needs_target", False)]
    if source.partition(":")[0] not in tables:
        raise RecipeError("source", got=source, expected=f"a table file: {', '.join(tables)} "
                          "followed by :PATH, e.g. csv:data.csv")
    try:
        reader = open_reader(source, target, chunk_rows)
    except RecipeError as e:
        if e.path == "data.target":
            raise RecipeError("--target", got=target, expected=e.expected, hint=e.hint) from None
        raise
    summaries = {c: ColumnSummary(c) for c in reader.columns}
    codes: list[np.ndarray] = []
    for chunk in reader.chunks({c: "string" for c in reader.columns}):
        for c, s in summaries.items():
            s.update(list(chunk.columns[c]))
        codes.append(chunk.labels)
    y = np.concatenate(codes) if codes else np.empty(0, np.int64)
    counts = np.bincount(y[y >= 0], minlength=len(reader.label_values))
    classes = {label_name(v): int(n) for v, n in zip(reader.label_values, counts, strict=True)}
    if not len(y):
        raise no_rows(source, [*reader.columns, target])
    present = [k for k, n in classes.items() if n]
    if len(present) < 2:
        raise one_class(source, target, present)
    return summaries, classes


def _continuous(classes: dict[str, int]) -> bool:
    """Numbers with many distinct values, or non-integer numbers: a regression target. (Many
    distinct strings are not numbers: a classification of many classes.)"""
    try:
        numbers = [float(k) for k in classes]
    except ValueError:
        return False
    return len(numbers) > MAX_CLASSES or any(not n.is_integer() for n in numbers)


def _target_stats(classes: dict[str, int]) -> dict[str, float]:
    """mean, std, min, max of a number target from its value counts."""
    v = np.array([float(k) for k in classes])
    n = np.array(list(classes.values()), dtype=np.float64)
    mean = float((v * n).sum() / n.sum())
    std = float(np.sqrt((n * (v - mean) ** 2).sum() / n.sum()))
    return {"mean": mean, "std": std, "min": float(v.min()), "max": float(v.max())}


def starter_recipe(source: str, target: str, summaries: dict[str, ColumnSummary],
                   classes: dict[str, int], tune: int = 0) -> str:
    """A commented starter recipe predicting `target` from every useful column: classification,
    or regression (the `number` head) when the target is a continuous number. `tune` > 0 adds a
    `tune:` section of that many trials around the starter (the family's `tune_space`), which
    `danlu run` does before training the best configuration."""
    regression = _continuous(classes)
    kept, dropped = infer_features(summaries)
    if not kept:
        raise DataError("no usable feature columns are left after dropping ID-like, constant and "
                        "empty columns", source=source)
    rows = next(iter(summaries.values())).rows
    arch, kept, unfit = _family_for(kept)
    dropped.update(unfit)
    ratio = max(classes.values()) / max(min(classes.values()), 1)
    imbalanced = ratio > IMBALANCE and not regression
    from danlu.features import build_features
    from danlu.models import models

    features = build_features([(c, t, [c], {}) for c, t in kept.items()])
    for f in features:  # string features see their values (a category's vocabulary: its width)
        if f.parse == "string":
            f.partial_fit(np.array(sorted(summaries[f.columns[0]].values), dtype=object))
    model, train = models[arch].starter(features, rows)
    watch = "val.rmse" if regression else "val.f1_macro" if imbalanced else "val.accuracy"
    # Early stopping on balanced classes watches the validation log-loss: smoother than accuracy
    # on a small validation split, whose best epoch is partly chance (fair: 0.713 vs 0.695 test
    # accuracy with 32 members). Tuning still scores `watch`.
    stop_on = "val.loss" if watch == "val.accuracy" else watch
    train.setdefault("early_stopping", {"metric": stop_on, "patience": 20})
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", Path(source.partition(":")[2]).stem).strip("-.") or "data"
    balance = ", ".join(f"{k}: {v}" for k, v in sorted(classes.items(), key=lambda kv: -kv[1])[:12])
    if regression:
        s = _target_stats(classes)
        lines = [
            f"# Starter recipe written by `danlu init {source} --target {target}`.",
            f"# {rows:,} rows; task: regression of {target!r} (a number, "
            f"{len(classes)} distinct values).",
            f"# Target: mean {s['mean']:.4g}, std {s['std']:.4g}, min {s['min']:.4g}, "
            f"max {s['max']:.4g}; the model learns it standardized (training split's mean/std).",
        ]
    else:
        lines = [
            f"# Starter recipe written by `danlu init {source} --target {target}`.",
            f"# {rows:,} rows; task: classification of {target!r} ({len(classes)} classes).",
            f"# Class balance: {balance}{' ...' if len(classes) > 12 else ''}.",
        ]
    if imbalanced:
        lines += [f"# WARNING: imbalanced classes (largest/smallest = {ratio:.1f}): accuracy can look good",
                  "# while a small class is never predicted; early stopping watches val.f1_macro instead."]
    lines += ["version: 2", f"name: {name}", "seed: 0", "", "data:",
              f"  source: {source}",
              f"  target: {{column: {_yaml_key(target)}, head: number}}  # regression; loss: mse "
              "(or huber)" if regression else f"  target: {_yaml_key(target)}",
              "  # Each column's feature type, recognised from the whole file (docs/data.md):"]
    lines.append("  features:")
    lines += [f"    {_yaml_key(c)}: {t:<10} # {summaries[c].describe()}" for c, t in kept.items()]
    if dropped:
        lines.append(f"  drop: [{', '.join(_yaml_key(c) for c in dropped)}]")
        lines += [f"  #   {c}: {why}" for c, why in dropped.items()]
    lines += ["  split: {val: 0.15, test: 0.2, stratify: true}"
              + ("   # a number: stratified on its deciles" if regression else ""), "",
              "preprocess:",
              "  normalize: zscore      # fitted on the training split; inside the exported ONNX graph",
              *(["  bins: 16               # each number also as its piecewise-linear code in 16",
                 "                         # quantile bins: an MLP cuts at thresholds as trees do"]
                if "number" in kept.values() else []),
              "  clean:",
              "    invalid: drop        # rows with +-inf, a bad line, a missing target: removed, counted",
              "    missing: impute      # missing/non-numeric number cells: training median + indicator,",
              "                         # in the ONNX graph; counted in data/cleaning.json (drop: remove)",
              "    duplicates: true", "",
              f"# {len(kept)} feature columns -> the {arch} family, sized to them "
              f"(models/{arch}.py `starter`).",
              *([f"# ensemble: {model['ensemble']} MLPs sharing their hidden layers, trained at once and "
                 "averaged (TabM-mini;", "# docs/data.md); ensemble: 1 is one MLP, faster to train, "
                 "usually less accurate."] if model.get("ensemble", 1) > 1 else []),
              *_section("model", model),
              f"# Sized to {rows:,} rows; early stopping keeps the best epoch"
              + (" (by validation log-loss)." if train["early_stopping"]["metric"] == "val.loss"
                 else "."),
              *_section("train", train),
              *(_tune_section(models[arch].tune_space(model, train, rows), tune, watch,
                            "number" if regression else "category")
                if tune else []),
              "evaluate:", "  gate: {}                 # e.g. {r2: 0.5, rmse: 50}: r2 below or rmse "
              "above it, no package" if regression else
              "  gate: {}                 # e.g. {accuracy: 0.9}: below it, no package", ""]
    return "\n".join(lines)


def _family_for(kept: dict[str, str]) -> tuple[str, dict[str, str], dict[str, str]]:
    """(family, the columns it takes, the others with why): the registered family that takes
    the most of the columns (ties: the one that takes fewest types, then the built-ins' order)."""
    from danlu.features import build_features
    from danlu.models import models

    best = None
    for arch in dict.fromkeys(["mlp", "cnn", "transformer", *models.names()]):
        fam = models[arch]
        took = {c: t for c, t in kept.items() if t in fam.accepts}
        if not took:
            continue
        try:
            fam.check(fam.config(), build_features([(c, t, [c], {}) for c, t in took.items()]))
        except Exception:  # noqa: BLE001  (this family cannot take these columns together)
            continue
        # the most columns; on a tie the most specific family (text alone: the transformer)
        if best is None or len(took) > len(best[1]) or (
                len(took) == len(best[1]) and len(fam.accepts) < len(models[best[0]].accepts)):
            best = (arch, took)
    if best is None:
        raise DataError(f"no model family takes these columns ({', '.join(kept)})")
    arch, took = best
    unfit = {c: f"a {t} column, which {arch} (the family for the other columns) does not take; "
                f"one family for {t} beside them is not yet supported"
             for c, t in kept.items() if c not in took}
    return arch, took, unfit


def _tune_section(space: dict, trials: int, watch: str, head: str) -> list[str]:
    """`tune:` for `danlu init --tune N`: TPE over the family's space, the median pruner after a
    few epochs, scored on the metric early stopping watches."""
    from danlu.features import heads

    direction = "minimize" if watch.removeprefix("val.") in heads[head].lower_better else "maximize"
    body = {"trials": trials, "sampler": "tpe", "startup_trials": max(1, min(5, trials // 2)),
            "objective": watch, "direction": direction,
            "pruner": {"name": "median", "startup_trials": 3, "warmup_epochs": 5},
            "space": space}
    return [f"# `danlu init --tune {trials}`: {trials} trials around the configuration above "
            f"(TPE, {watch}); `danlu run`",
            "# trains the best one. tune.enabled: false keeps the section without running it.",
            *_section("tune", body)]


def _section(name: str, body: dict) -> list[str]:
    import yaml

    text = yaml.safe_dump({name: body}, sort_keys=False, default_flow_style=None)
    return [*text.rstrip().splitlines(), ""]


def _yaml_key(name: str) -> str:
    """A column name as a YAML key (quoted when YAML would read it otherwise)."""
    import yaml

    plain = yaml.safe_dump({name: 0}).strip()
    return plain[: -len(": 0")]


def init_recipe(source: str, target: str, tune: int = 0) -> str:
    """`danlu init`'s recipe text for `source` (with `tune` trials of search when > 0)."""
    return starter_recipe(source, target, *inspect_table(source, target), tune=tune)

