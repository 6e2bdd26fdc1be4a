"""Compression under a budget: an Optuna multi-objective study over compression recipes.

Each trial is a variant (distill/prune/quantize settings) built and measured like any other;
the objectives are the budget's metric on the validation split (accuracy up; an RMSE down),
latency at batch 32 as served (down) and deflated
size (down). The space needs the model family's width students, pruning and int8 hooks. The
trials on the study's Pareto front are then rebuilt as ordinary variants, gated on the test
split, and the budget chooses among them.
"""

from __future__ import annotations

import shutil
from typing import Any

from danlu.compress.config import CompressConfig, DistillConfig, PruneConfig, QuantizeConfig, VariantConfig
from danlu.runs import Run, write_json

__all__ = ["search", "trial_variant"]


def trial_variant(trial: Any, cfg: CompressConfig) -> VariantConfig:
    """The variant one trial proposes: a shrinking step (or none), then quantization (or none)."""
    s = cfg.search
    method = trial.suggest_categorical("method", ["none", "magnitude", "structured", "distill"])
    spec: dict[str, Any] = {"name": f"trial-{trial.number}"}
    if method == "magnitude":
        spec["prune"] = PruneConfig(sparsity=trial.suggest_float("sparsity", 0.3, 0.95, step=0.05),
                                    finetune_epochs=s.finetune_epochs)
    elif method == "structured":
        spec["prune"] = PruneConfig(method="structured", finetune_epochs=s.finetune_epochs,
                                    ratio=trial.suggest_float("ratio", 0.25, 0.75, step=0.125))
    elif method == "distill":
        spec["distill"] = DistillConfig(width=trial.suggest_float("width", 0.25, 0.75, step=0.125),
                                        epochs=s.distill_epochs)
    choices = ["static", "dynamic"] if method == "none" else ["none", "static", "dynamic"]
    mode = trial.suggest_categorical(f"quantize_after_{method}", choices)
    if mode != "none":
        calib = (trial.suggest_categorical("calibration", ["minmax", "entropy", "percentile"])
                 if mode == "static" else "minmax")
        spec["quantize"] = QuantizeConfig(mode=mode, calibration=calib)
    return VariantConfig(**spec)


def _check_hooks(base: Any) -> None:
    """The search space needs the family's width students, pruning and int8 modes."""
    from danlu.errors import RecipeError

    fam, model = base.family, base.model
    if model is None:
        raise RecipeError("compress.baseline", got=base.record["source"]["path"],
                          expected="'train' or a run folder for --search",
                          hint="the search space prunes and distills, which needs torch weights; "
                               "a package holds only its graphs")
    missing = [hook for hook, ok in (
        ("scaled (width students)", fam.scaled(model.cfg, 0.5) is not None),
        ("prunable (magnitude pruning)", fam.prunable(model.net) is not None),
        ("widths (structured pruning)", fam.widths(model.net, model.cfg) is not None),
        ("quantize_modes static and dynamic", {"static", "dynamic"} <= set(fam.quantize_modes)),
    ) if not ok]
    if missing:
        raise RecipeError("model.arch", got=fam.name,
                          expected="a model family whose compression hooks the --search space "
                                   f"uses; the {fam.name} family has no {', '.join(missing)}",
                          hint="list the variants to try in compress.variants and run "
                               "`danlu compress RUN` without --search")


def search(run: Run, cfg: CompressConfig, trials: int | None = None) -> list[VariantConfig]:
    """Run the study (compress/search/study.db, resumable); return the front's variants."""
    import optuna

    from danlu.compress.measure import measure
    from danlu.compress.plan import prepare
    from danlu.compress.variants import build_variant

    folder = run.stage_dir("compress") / "search"
    folder.mkdir(parents=True, exist_ok=True)
    ctx, base, _, _ = prepare(run, cfg, [], folder / "baseline", check=_check_hooks)
    sampler = (optuna.samplers.NSGAIISampler(seed=run.recipe.seed) if cfg.search.sampler == "nsga2"
               else optuna.samplers.TPESampler(seed=run.recipe.seed, multivariate=True))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="compress", storage=f"sqlite:///{folder / 'study.db'}",
                                directions=["minimize" if ctx.head.lower_is_better(ctx.metric)
                                            else "maximize", "minimize", "minimize"],
                                sampler=sampler,
                                load_if_exists=True)

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        v = trial_variant(trial, cfg)
        trial.set_user_attr("variant", v.model_dump(mode="json"))
        b = build_variant(ctx, v, base, folder / v.name, f"trial {trial.number}")
        m = measure(ctx, {v.name: b})[v.name]  # the validation split decides, not the test
        shutil.rmtree(b.dir, ignore_errors=True)  # trials are measured, not kept
        return m.val_metric, m.latency["b32_ms"], float(m.deflated_bytes)

    study.optimize(objective, n_trials=trials or cfg.search.trials)
    front = sorted(study.best_trials, key=lambda t: t.number)
    write_json(folder / "trials.json", [
        {"number": t.number, "state": t.state.name, "values": t.values, "params": t.params,
         "variant": t.user_attrs.get("variant"), "on_front": t in front} for t in study.trials])
    return [VariantConfig.model_validate(t.user_attrs["variant"]) for t in front]
