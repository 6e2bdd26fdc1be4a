"""Experiment tracking (recipe `track:`), read back as a user would: MLflow's own client and
TensorBoard's own event reader on the files a real run wrote."""

from __future__ import annotations

import json
import sys

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import danlu
from danlu.errors import DanluError
from danlu.runs import read_json
from tests.conftest import DIGITS
from tests.tune.conftest import tune_section

# A tiny digits run: a CNN of 8/16 channels, 2 epochs, no augmentation (a few seconds).
TINY = {"model.channels": [8, 16], "model.hidden": 32, "train.epochs": 2,
        "train.early_stopping.patience": 0, "evaluate.gate": {}, "preprocess.augment": []}


def _scalars(logdir, tag):
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _history(run, client, key):
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]


def test_a_tracked_run_reads_back_in_mlflow_and_tensorboard(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # nothing may land outside the run folder (MLflow's ./mlruns)
    res = danlu.run(DIGITS, {**TINY, "evaluate.bootstrap.resamples": 200, "export.latency_runs": 3,
                             "track": {"tensorboard": True, "mlflow": True}}, out=tmp_path / "runs")
    d = res.run_dir
    assert not list(cwd.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "runs"]

    # The run folder's own store: sqlite:///RUN/mlflow.db, artifacts in RUN/mlartifacts.
    client = MlflowClient(f"sqlite:///{d / 'mlflow.db'}")
    [exp] = [e for e in client.search_experiments() if e.name == "digits"]
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == d.name
    assert run.info.artifact_uri.startswith((d / "mlartifacts").resolve().as_uri())

    # The resolved recipe as dotted params.
    params = run.data.params
    assert params["train.optimizer.lr"] == "0.002" and params["model.channels"] == "[8, 16]"
    assert params["data.split.val"] == "0.15" and params["evaluate.bootstrap.resamples"] == "200"

    # Per-epoch curves and learning rate, as in train/history.jsonl, in both trackers.
    rows = [json.loads(line) for line in (d / "train" / "history.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for key in ("train_loss", "val_loss", "val_accuracy", "lr"):
        want = [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in rows]
        assert _history(run, client, key) == want, key
        assert _scalars(d / "tensorboard", key) == want, key

    # Final test metrics with their bootstrap intervals.
    test = read_json(d / "eval" / "metrics.json")["test"]
    m = run.data.metrics
    assert m["test.accuracy"] == pytest.approx(test["accuracy"])
    assert [m["test.accuracy_ci_low"], m["test.accuracy_ci_high"]] == pytest.approx(
        test["ci"]["accuracy"])
    assert m["test.accuracy_ci_low"] <= m["test.accuracy"] <= m["test.accuracy_ci_high"]
    assert run.data.tags["danlu.gate"] == "passed"

    # report.html and the package as artifacts.
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {"package", "report.html"}
    assert {"package/model.onnx", "package/danlu-model.json"} <= {
        f.path for f in client.list_artifacts(run.info.run_id, "package")}

    # Resumed with nothing to do: the same MLflow run, still one.
    again = danlu.run(None, resume=d)
    assert set(again.stages.values()) == {"cached"}
    assert [r.info.run_id for r in client.search_runs([exp.experiment_id])] == [run.info.run_id]


def test_each_tuning_trial_is_a_child_run_of_the_study_run(make_run, tmp_path, monkeypatch):
    from danlu.tune.stage import optimize

    # A store the user points at (an opted-in file store here; sqlite or a server alike).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    run = make_run(tune_section(trials=2), **{"track.mlflow.uri": uri, "track.tensorboard": True})
    optimize(run, run.recipe.tune)
    parent = read_json(run.path("track.json"))["mlflow"]["run_id"]
    client = MlflowClient(uri)
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent}'",
                                  order_by=["attributes.start_time ASC"])
    assert [c.info.run_name for c in children] == ["tune/trial-0", "tune/trial-1"]
    from danlu.tune.results import trial_rows
    from danlu.tune.study import open_study

    trials = trial_rows(open_study(run, run.recipe.tune, seed=0))
    for child, trial in zip(children, trials, strict=True):
        assert child.info.status == "FINISHED"
        assert float(child.data.params["train.optimizer.lr"]) == pytest.approx(
            trial["overrides"]["train.optimizer.lr"])
        assert [s for s, _ in _history(child, client, "val_accuracy")] == [1, 2]
        assert child.data.metrics["val.accuracy"] == pytest.approx(trial["values"][0])
    assert [s for s, _ in _scalars(run.path("tensorboard", "tune", "trial-1"), "val_accuracy")] == [1, 2]
    assert not (tmp_path / "runs" / run.dir.name / "mlflow.db").exists()  # the user's store only


def test_a_compression_variant_logs_accuracy_size_and_latency(tmp_path, monkeypatch):
    from danlu.compress.stage import _track_variant
    from danlu.track import Tracker
    from danlu.track._mlflow import open_mlflow
    from danlu.track.config import MlflowConfig

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    tracked = Tracker([open_mlflow(tmp_path, "c", MlflowConfig(uri=uri), {}, begin=True)])
    # A row of compress/pareto.json as danlu.compress.pareto.row writes it (the keys logged).
    row = {"name": "int8", "from": "baseline", "metric": "accuracy", "accuracy": 0.95,
           "accuracy_ci": [0.93, 0.97], "val_accuracy": 0.96, "params": 1000,
           "nonzero_params": 1000, "size_bytes": 12_000, "deflated_bytes": 9_000, "b1_ms": 0.05,
           "b32_ms": 0.4, "throughput_rows_s": 80_000.0, "speedup_b32_vs_baseline": 1.5,
           "passed": True, "steps": ["dynamic quantization"], "runtime": "onnxruntime",
           "dtype": "int8", "quantized": "dynamic"}
    _track_variant(tracked, row)
    tracked.log_params({"data": {"features": {"sepal length (cm)": "number"}}})
    client = MlflowClient(uri)
    [child] = client.search_runs([client.get_run(tracked.backends[0].run_id).info.experiment_id],
                                 filter_string="tags.`danlu.stage` = 'compress'")
    assert child.info.run_name == "compress/int8" and child.info.status == "FINISHED"
    assert child.data.metrics["accuracy"] == 0.95 and child.data.metrics["size_mb"] == 0.012
    assert child.data.metrics["b32_ms"] == 0.4 and child.data.metrics["accuracy_ci_low"] == 0.93
    assert child.data.metrics["passed"] == 1.0 and child.data.params["quantized"] == "dynamic"
    # A key outside MLflow's alphabet (a column named with parentheses) is spelled with _.
    parent = client.get_run(tracked.backends[0].run_id)
    assert parent.data.params == {"data.features.sepal length _cm_": "number"}


def test_a_missing_tracker_library_is_one_line_before_any_run_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if MLflow were not installed
    with pytest.raises(DanluError, match=r"track\.mlflow needs the mlflow package.*"
                                         r"pip install 'danlu\[track\]'"):
        danlu.run(DIGITS, {**TINY, "track.mlflow": True}, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_track_keys_are_checked_with_their_dotted_path():
    from danlu.errors import RecipeError

    with pytest.raises(RecipeError, match=r"track\.mlflow\.urii"):
        danlu.load_recipe(DIGITS, {"track.mlflow": {"urii": "x"}})
    assert danlu.load_recipe(DIGITS).track.enabled is False
    assert danlu.load_recipe(DIGITS, {"track.mlflow": True}).track.mlflow.uri is None
