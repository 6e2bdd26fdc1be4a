"""One public path for every model family: the rows of pareto.json of a table model (MLP), an
image model (CNN) and a text model (transformer) are all made by danlu.compress.pareto.row."""

from __future__ import annotations

import json

import pytest

from tests.compress.conftest import FAST, ROWS, recording_rows


@pytest.fixture(scope="module")
def wine_run(tmp_path_factory):
    """A tiny table run: scikit-learn's wine (178 rows, 13 numbers) -> a one-layer MLP."""
    import danlu

    recipe = {"name": "wine", "data": {"source": "sklearn:wine", "split": {"val": 0.2, "test": 0.25}},
              "model": {"arch": "mlp", "hidden": [32]}, "train": {"epochs": 20},
              "evaluate": {"gate": {}}}
    return danlu.run(recipe, out=tmp_path_factory.mktemp("wine")).run_dir


@pytest.mark.slow
def test_one_row_function_for_tables_images_and_text(wine_run, small_run, text_compressed,
                                                     tmp_path):
    from danlu.compress.config import CompressConfig
    from danlu.compress.pareto import row
    from danlu.compress.stage import compress
    from danlu.runs import Run
    from tests.compress.conftest import copy_run

    variants = [{"name": "p50", "prune": {"sparsity": 0.5, "finetune_epochs": 1}},
                {"name": "dyn8", "from": "p50", "quantize": {"mode": "dynamic"}}]
    docs = {}
    with recording_rows():
        for name, src in (("mlp", wine_run), ("cnn", small_run.run_dir)):
            run_dir = copy_run(src, tmp_path / name)
            compress(Run.open(run_dir), CompressConfig.model_validate({**FAST, "variants": variants}))
            docs[name] = json.loads((run_dir / "compress" / "pareto.json").read_text())
    docs["transformer"] = text_compressed[1]
    import danlu.compress.stage as stage

    assert stage.row is row  # the spy is gone: the stage calls the public function again
    for fam, doc in docs.items():
        made = [(name, out) for name, family, out in ROWS if family == fam]
        # every row of this run's pareto.json is what `row` returned for its variant
        rows = {r["name"]: r for r in doc["variants"]}
        for r in rows.values():
            assert any(json.loads(json.dumps(out)) == r for name, out in made if name == r["name"]), \
                (fam, r["name"])
        assert set(rows["baseline"]) == set(next(iter(docs.values()))["variants"][0])  # one shape
    mlp = {r["name"]: r for r in docs["mlp"]["variants"]}
    assert mlp["p50"]["nonzero_params"] < 0.6 * mlp["p50"]["params"]
    assert mlp["dyn8"]["quantized"] == "dynamic" and mlp["dyn8"]["from"] == "p50"
