"""The tuning and compression sections render the files those stages really write: a real
`compress` on a copy of the digits run, and tune/ files from a real Optuna study written by
danlu.tune.results (the functions the tune stage uses)."""

from __future__ import annotations

import html
import json
import re
import shutil

import pytest

from danlu.report import write_report

pytestmark = pytest.mark.slow  # a real compress of the digits run (about a minute on 2 busy cores)


def _tune_files(run_dir) -> None:
    import optuna

    from danlu.runs import atomic_write, write_json
    from danlu.tune.config import TuneConfig
    from danlu.tune.results import best_record, trial_rows, write_plots

    cfg = TuneConfig(trials=6, space={"train.optimizer.lr": {"log_float": [1e-4, 1e-1]}})

    def objective(trial):
        lr = trial.suggest_float("train.optimizer.lr", 1e-4, 1e-1, log=True)
        trial.set_user_attr("overrides", {"train.optimizer.lr": lr})
        trial.set_user_attr("epochs", 3)
        for step in range(3):
            trial.report(0.5 + 0.1 * step - abs(lr - 0.01), step)
        trial.set_user_attr("best_epoch", 3)
        return 0.9 - abs(lr - 0.01)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=6)
    out = run_dir / "tune"
    out.mkdir()
    atomic_write(out / "trials.jsonl", "".join(json.dumps(r) + "\n" for r in trial_rows(study)))
    write_json(out / "best.json", best_record(study, cfg, "sqlite:///tune/study.db"))
    write_plots(study, cfg, out)


@pytest.fixture(scope="module")
def full_run(digits_run, tmp_path_factory):
    from danlu.compress.config import CompressConfig
    from danlu.compress.stage import compress
    from danlu.runs import Run

    run_dir = tmp_path_factory.mktemp("full") / "run"
    shutil.copytree(digits_run.run_dir, run_dir)
    cfg = CompressConfig.model_validate({
        "variants": [{"name": "pruned50", "prune": {"sparsity": 0.5, "finetune_epochs": 1}},
                     {"name": "student", "distill": {"width": 0.25, "epochs": 1}},
                     {"name": "dyn8", "quantize": {"mode": "dynamic"}}],
        "latency": {"runs": 10, "warmup": 2}, "promote": True})
    compress(Run.open(run_dir), cfg)
    _tune_files(run_dir)
    write_report(run_dir)
    return run_dir


def _section(page: str, name: str) -> str:
    m = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert m, f"no {name} section"
    return m.group(1)


def test_compression_section_shows_every_variant_its_gates_and_the_choice(full_run):
    doc = json.loads((full_run / "compress" / "pareto.json").read_text())
    sec = _section((full_run / "report.html").read_text(), "compression")
    names = [r["name"] for r in doc["variants"]]
    assert names == ["baseline", "pruned50", "student", "dyn8"]
    rows = re.findall(r"<tr><td><b>(.*?)</b>", sec)
    assert rows == names  # one table row per variant, in order
    assert sec.count("<svg") == 2  # accuracy vs latency, accuracy vs size
    assert "Pareto front" in sec and f"chosen: {doc['chosen']}" in sec
    for r in doc["variants"]:
        lo, hi = r["accuracy_ci"]
        assert f'{r["accuracy"]:.4f} <span class="ci">[{lo:.4f}, {hi:.4f}]</span>' in sec
        assert f'{r["b32_ms"]:.3f}' in sec and f'{r["params"]:,}' in sec
        for reason in r["reasons"]:  # a rejected variant says why
            assert html.escape(reason) in sec
    gain = doc["variants"][2]["distillation_gain"]
    assert gain is not None and "Distillation gain" in sec
    assert f'{gain["accuracy_gain"] * 100:+.2f}' in sec and "McNemar p" in sec
    assert ("promoted: <code>package/</code> now holds" in sec) == doc["promoted"]
    assert html.escape("; ".join(doc["why"])) in sec


def test_tuning_section_renders_tune_best_trials_and_optuna_plots(full_run):
    best = json.loads((full_run / "tune" / "best.json").read_text())
    sec = _section((full_run / "report.html").read_text(), "tuning")
    assert f"#{best['trial']}: val.accuracy (maximize) = {best['values'][0]:.4f}" in sec
    assert "Trials (6)" in sec and sec.count("<tr><td>") >= 6 + 6  # best table + a row per trial
    written = json.loads((full_run / "tune" / "plots.json").read_text())["written"]
    assert written and sec.count('src="data:image/svg+xml;base64,') == len(written)


def test_full_report_renders_in_chromium(full_run):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.report.test_browser import _browser

    with sync_api.sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((full_run / "report.html").as_uri())
        plots = page.eval_on_selector_all(
            "#compression svg.plot", "els => els.map(e => e.getBoundingClientRect().width)")
        imgs = page.eval_on_selector_all(
            "#tuning img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")
        browser.close()
    assert len(plots) == 2 and all(w > 300 for w in plots)
    assert imgs and all(w > 100 for w in imgs)
