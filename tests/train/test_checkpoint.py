"""Checkpoints: exact resume from any of them, the last K kept, corrupt ones skipped."""

from __future__ import annotations

import json

import pytest
import torch

from danlu.train.checkpoint import CheckpointStore, CheckpointWarning
from danlu.train.loop import fit
from tests.train.helpers import dataset, mlp, train_cfg

# Dropout (the torch RNG), AdamW + one-cycle (optimizer and schedule state) and accumulation:
# everything a resume must restore.
RECIPE = dict(epochs=3, batch_size=32, accumulate=2, checkpoint={"every_steps": 4, "keep_last": 50},
              optimizer={"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
              schedule={"name": "onecycle"})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    x, y, head = dataset("digits", rows=600)
    store = CheckpointStore(tmp_path_factory.mktemp("ckpt"), train_cfg(**RECIPE).checkpoint, "k")
    model = mlp(64, 10, hidden=32, dropout=0.3)
    result = fit(model, (x, y), (x[:200], y[:200]), head, train_cfg(**RECIPE), seed=0,
                 checkpoints=store)
    return store, model, result


def test_checkpoints_hold_safetensors_and_json_only(uninterrupted):
    store, _, _ = uninterrupted
    names = {p.suffix for p in store.folder.iterdir()}
    assert names == {".safetensors", ".json"}
    body = json.loads(store.paths()[-1].read_text())["body"]
    assert {"loop", "optimizer", "schedule", "scaler", "rng", "tensors_sha256", "key"} <= set(body)
    assert body["loop"]["epoch"] == 3 and len(body["loop"]["history"]) == 3


def test_resume_from_a_mid_epoch_checkpoint_is_bitwise_exact(uninterrupted):
    store, model, result = uninterrupted
    x, y, head = dataset("digits", rows=600)
    mid = [p for p in store.paths() if json.loads(p.read_text())["body"]["loop"]["batch"] not in (0,)]
    ckpt = CheckpointStore.read(mid[len(mid) // 2])
    assert 0 < ckpt.body["loop"]["batch"] < 19  # 600 rows / 32 = 19 batches an epoch
    torch.manual_seed(1234)  # a resumed process starts with other RNG states
    resumed = mlp(64, 10, hidden=32, dropout=0.3, seed=99)
    again = fit(resumed, (x, y), (x[:200], y[:200]), head, train_cfg(**RECIPE), seed=0,
                resume=ckpt)
    for (k, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in result.history]
    assert again.resumed_from == ckpt.path.name


def test_only_the_last_k_are_kept(tmp_path):
    x, y, head = dataset()
    cfg = train_cfg(epochs=4, batch_size=50, checkpoint={"every_steps": 1, "keep_last": 2})
    store = CheckpointStore(tmp_path, cfg.checkpoint, "k")
    fit(mlp(4, 3), (x, y), (x, y), head, cfg, seed=0, checkpoints=store)
    assert [p.name for p in store.paths()] == ["step-00000011.json", "step-00000012.json"]
    assert len(list(tmp_path.iterdir())) == 4


def _three_checkpoints(tmp_path):
    x, y, head = dataset()
    cfg = train_cfg(epochs=3, batch_size=150)
    store = CheckpointStore(tmp_path, cfg.checkpoint, "k")
    fit(mlp(4, 3), (x, y), (x, y), head, cfg, seed=0, checkpoints=store)
    assert [p.stem for p in store.paths()] == ["step-00000001", "step-00000002", "step-00000003"]
    return store


def test_truncated_tensors_fall_back_to_the_previous_checkpoint(tmp_path):
    store = _three_checkpoints(tmp_path)
    newest = tmp_path / "step-00000003.safetensors"
    newest.write_bytes(newest.read_bytes()[:-100])
    with pytest.warns(CheckpointWarning, match="step-00000003.*checksum of its tensors"):
        ckpt = store.latest()
    assert ckpt.path.stem == "step-00000002" and ckpt.body["loop"]["epoch"] == 2


def test_edited_json_falls_back_to_the_previous_checkpoint(tmp_path):
    store = _three_checkpoints(tmp_path)
    path = tmp_path / "step-00000003.json"
    path.write_text(path.read_text().replace('"epoch": 3', '"epoch": 7'))
    with pytest.warns(CheckpointWarning, match="checksum of its JSON"):
        assert store.latest().path.stem == "step-00000002"
    path.write_text(path.read_text()[:50])  # truncated JSON
    with pytest.warns(CheckpointWarning, match="step-00000003"):
        assert store.latest().path.stem == "step-00000002"


def test_a_checkpoint_of_another_recipe_is_not_resumed(tmp_path):
    _three_checkpoints(tmp_path)
    other = CheckpointStore(tmp_path, train_cfg().checkpoint, "another-key")
    with pytest.warns(CheckpointWarning, match="different recipe"):
        assert other.latest() is None


@pytest.mark.parametrize("optimizer,schedule", [
    *((name, "constant") for name in ("sgd", "momentum", "nesterov", "adagrad", "adam", "rmsprop")),
    *(("momentum", name) for name in ("step", "cosine", "onecycle", "plateau")),
])
def test_every_optimizer_and_schedule_state_survives_a_resume(tmp_path, optimizer, schedule):
    x, y, head = dataset()
    cfg = train_cfg(epochs=4, batch_size=32, checkpoint={"every_steps": 3, "keep_last": 50},
                    optimizer={"name": optimizer, "lr": 0.05},
                    schedule={"name": schedule, "step_epochs": 1, "patience": 0,
                              "warmup_epochs": 1})
    store = CheckpointStore(tmp_path, cfg.checkpoint, "k")
    ref = mlp(4, 3, dropout=0.2)
    fit(ref, (x, y), (x[:40], y[:40]), head, cfg, seed=0, checkpoints=store)
    ckpt = CheckpointStore.read(store.paths()[len(store.paths()) // 2])
    again = mlp(4, 3, dropout=0.2, seed=5)
    fit(again, (x, y), (x[:40], y[:40]), head, cfg, seed=0, resume=ckpt)
    assert all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(),
                                                 again.state_dict().values(), strict=True))
