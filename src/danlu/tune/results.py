"""What a study leaves in the run folder: tune/trials.jsonl, tune/best.json and SVG plots."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from danlu.errors import DanluError
from danlu.runs import atomic_write
from danlu.tune.config import TuneConfig

__all__ = ["best_record", "trial_rows", "write_plots"]


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One JSON row per trial of the study (every worker's), in trial-number order."""
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        rows.append({
            "number": t.number, "state": t.state.name.lower(),
            "values": t.values, "overrides": t.user_attrs.get("overrides", {}),
            "params": t.params, "epochs": t.user_attrs.get("epochs"),
            "best_epoch": t.user_attrs.get("best_epoch"),
            "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
            # A retry of a trial whose worker died names the trial it replaces.
            "retry_of": t.system_attrs.get("failed_trial"),
            "worker": t.user_attrs.get("worker"),
            "error": t.user_attrs.get("error"),
            "started": t.datetime_start.isoformat() if t.datetime_start else None,
            "seconds": t.duration.total_seconds() if t.duration else None,
        })
    return rows


def _chosen(study: optuna.Study, cfg: TuneConfig) -> tuple[FrozenTrial, list[FrozenTrial]]:
    """The trial to train: the best one, or on a Pareto front the best on the first objective."""
    if len(cfg.goals) == 1:
        return study.best_trial, [study.best_trial]
    front = sorted(study.best_trials, key=lambda t: t.number)
    sign = -1 if cfg.goals[0][1] == "maximize" else 1
    return min(front, key=lambda t: (sign * t.values[0], t.number)), front


def best_record(study: optuna.Study, cfg: TuneConfig, storage: str) -> dict[str, Any]:
    """best.json: the chosen configuration, its value(s), trial counts, where the study lives."""
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise DanluError(f"tune: no trial of study {study.study_name!r} completed "
                         f"(states: {dict(counts)}); see tune/trials.jsonl for their errors")
    best, front = _chosen(study, cfg)
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    epochs = [t.user_attrs.get("epochs") or 0 for t in study.get_trials(deepcopy=False)]
    return {
        "objectives": [{"metric": m, "direction": d} for m, d in cfg.goals],
        "trial": best.number, "values": best.values, "overrides": best.user_attrs["overrides"],
        "best_epoch": best.user_attrs.get("best_epoch"),
        "pareto_front": [{"trial": t.number, "values": t.values,
                          "overrides": t.user_attrs["overrides"]} for t in front]
        if len(cfg.goals) > 1 else None,
        "trials": {"finished": counts.get("complete", 0) + counts.get("pruned", 0), **counts},
        "epochs_total": sum(epochs), "epochs_pruned_trials": sum(
            t.user_attrs.get("epochs") or 0 for t in pruned),
        "sampler": cfg.sampler, "pruner": cfg.pruner.name,
        "study": study.study_name, "storage": storage,
    }


def write_plots(study: optuna.Study, cfg: TuneConfig, out: Path) -> dict[str, str]:
    """Optuna's matplotlib plots as SVG files under tune/; a plot the study cannot make is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    names = [m for m, _ in cfg.goals]
    single = len(names) == 1
    plots: dict[str, Any] = {}
    if single:
        plots["optimization_history"] = lambda: ovm.plot_optimization_history(
            study, target_name=names[0])
        plots["param_importances"] = lambda: ovm.plot_param_importances(study,
                                                                        target_name=names[0])
        plots["parallel_coordinate"] = lambda: ovm.plot_parallel_coordinate(
            study, target_name=names[0])
        plots["intermediate_values"] = lambda: ovm.plot_intermediate_values(study)
    else:
        for i, name in enumerate(names):
            plots[f"optimization_history_{i}"] = lambda i=i, name=name: (
                ovm.plot_optimization_history(study, target=lambda t: t.values[i],
                                              target_name=name))
        plots["param_importances"] = lambda: ovm.plot_param_importances(
            study, target=lambda t: t.values[0], target_name=names[0])
        plots["parallel_coordinate"] = lambda: ovm.plot_parallel_coordinate(
            study, target=lambda t: t.values[0], target_name=names[0])
        plots["pareto_front"] = lambda: ovm.plot_pareto_front(study, target_names=names)
    written: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = draw()
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            path = out / f"{name}.svg"
            import io

            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            atomic_write(path, buf.getvalue())
            written[name] = f"tune/{path.name}"
        except Exception as e:  # e.g. importances need two completed trials with varied params
            skipped[name] = f"{type(e).__name__}: {e}"
        finally:
            plt.close("all")
    atomic_write(out / "plots.json", json.dumps({"written": written, "skipped": skipped},
                                                indent=2) + "\n")
    return written
