"""`model.ensemble: k`: k MLPs sharing their hidden layers (TabM-mini), trained each on its own
loss, served as their mean; through the whole pipeline, compression's defaults included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import danlu
from danlu.data.stage import load_splits
from danlu.models.load import load_model
from danlu.models.members import member_rows
from danlu.runs import Run, read_json
from danlu.train.inputs import Inputs

K = 4


@pytest.fixture(scope="module")
def wine_members(tmp_path_factory):
    recipe = {"name": "wine", "data": {"source": "sklearn:wine", "split": {"val": 0.2, "test": 0.25}},
              "model": {"arch": "mlp", "hidden": [32], "ensemble": K, "dropout": 0.0},
              "train": {"epochs": 20}, "evaluate": {"gate": {}}, "compress": {}}
    return danlu.run(recipe, out=tmp_path_factory.mktemp("members"))


@pytest.mark.slow
def test_members_fit_their_own_losses_and_the_model_answers_their_mean(wine_members):
    assert set(wine_members.stages.values()) == {"ran"}
    run = Run.open(wine_members.run_dir)
    model = load_model(run.path("train", "model"))
    net = model.net
    x, y = Inputs(load_splits(run), model.cfg).xy("test")
    net.train()  # dropout 0: training mode differs only in returning every member
    members = net(x)
    assert members.shape == (len(x), K, 3)
    net.eval()
    with torch.no_grad():
        served = torch.softmax(net(x), dim=-1)
        mean = torch.softmax(members, dim=-1).mean(dim=1)
    torch.testing.assert_close(served, mean, atol=1e-6, rtol=1e-5)
    # the members are not copies of one another (their own input signs, their own output layers)
    assert not torch.allclose(members[:, 0], members[:, 1], atol=1e-3)
    # the training loss is the mean of the members' own losses
    rows, targets = member_rows(members, y, K)
    ce = torch.nn.functional.cross_entropy
    own = [ce(members[:, i], y) for i in range(K)]
    torch.testing.assert_close(ce(rows, targets), torch.stack(own).mean())
    # the package (ONNX, parity-checked at export) scores what evaluation scored
    record = read_json(run.path("package", "danlu-model.json"))
    assert record["parity"]["passed"]  # export compared ONNX Runtime with this network on the test rows
    metrics = read_json(run.path("eval", "metrics.json"))["test"]
    acc = float((served.argmax(-1) == y).float().mean())
    assert abs(acc - metrics["accuracy"]) < 1e-6


@pytest.mark.slow
def test_compress_defaults_leave_out_structured_pruning_for_members(wine_members):
    root = wine_members.run_dir / "compress"
    made = {p.name for p in root.iterdir() if p.is_dir()}
    assert made == {"baseline", "pruned80", "int8", "student", "student-int8"}
    pareto = read_json(root / "pareto.json")
    assert "left out, this model takes no such pruning: slim50" in str(pareto)
    student = read_json(root / "student" / "compression.json")["distill"]["student"]
    assert student["ensemble"] == K and student["hidden"] == [16]  # half as wide, as many members
    assert np.isfinite([r["accuracy"] for r in pareto["variants"]]).all()


def test_the_starter_uses_fewer_wider_members_on_large_tables():
    from danlu.features import build_features
    from danlu.models import models

    feats = build_features([("a", "number", ["a"], {}), ("b", "number", ["b"], {})])
    small, small_train = models["mlp"].starter(feats, 5_000)
    large, large_train = models["mlp"].starter(feats, 50_000)
    assert (small["ensemble"], small["hidden"], small_train["batch_size"]) == (32, [32, 32], 64)
    assert (large["ensemble"], large["hidden"], large_train["batch_size"]) == (8, [128, 128], 256)
