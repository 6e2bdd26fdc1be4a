"""Text training: length bucketing cuts padding, a text run resumes exactly (at an epoch's end
and mid-epoch), and the train stage merges LoRA adapters into the weights they adapt — on copies
of the session's tiny text run, so only the steps under test are trained again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import danlu
from danlu.features.text import TextFeature
from danlu.models.hf import resolve_pretrained
from danlu.runs import read_json
from danlu.train.state import LoopState, epoch_batches
from tests.textdata import bbc_texts


def _padding(batches, lengths: torch.Tensor) -> int:
    """Pad tokens when each batch is padded to its own longest row."""
    return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)


def test_length_bucketing_cuts_padding_and_keeps_every_row_once():
    texts = np.array(bbc_texts(0, 240)[0], dtype=object)  # ~100 to well over 512 tokens
    feature = TextFeature("text", ["text"]).bind_tokenizer(
        resolve_pretrained("minilm") / "tokenizer.json", 512)
    lengths = torch.from_numpy(np.asarray(feature.sort_key(texts)))  # what the train stage uses
    assert len(lengths) == 1200 and int(lengths.max()) == 512 and int(lengths.min()) < 200
    plain = epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), len(texts), 32)
    state = LoopState(gen=torch.Generator().manual_seed(0))
    bucketed = epoch_batches(state, len(texts), 32, lengths)
    assert len(bucketed) == len(plain) == 38
    assert torch.equal(torch.sort(torch.cat(bucketed)).values, torch.arange(len(texts)))
    naive, cut = _padding(plain, lengths), _padding(bucketed, lengths)
    assert cut < 0.2 * naive, (cut, naive)
    # seeded: the same generator state gives the same batches, in the same order
    again = epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), len(texts), 32, lengths)
    assert all(torch.equal(a, b) for a, b in zip(bucketed, again, strict=True))
    # a resumed epoch (batch > 0) rebuilds the same order from the epoch's saved rng state
    state.batch = 5
    assert all(torch.equal(a, b) for a, b in
               zip(bucketed, epoch_batches(state, len(texts), 32, lengths), strict=True))
    # and batch order is shuffled, not sorted by length
    firsts = [int(lengths[b].max()) for b in bucketed]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)


def _killed_after(src: Path, dst: Path, step: int) -> Path:
    """A copy of the run folder `src` as if its train stage had been killed right after the
    checkpoint of update `step`: later checkpoints, the trained model and the later stages'
    entries in manifest.json are gone."""
    shutil.copytree(src, dst)
    for p in (dst / "train" / "checkpoints").glob("step-*"):
        if int(p.name.split("-")[1].split(".")[0]) > step:
            p.unlink()
    shutil.rmtree(dst / "train" / "model")
    (dst / "train" / "summary.json").unlink()
    for stage in ("eval", "package"):
        shutil.rmtree(dst / stage, ignore_errors=True)
    manifest = read_json(dst / "manifest.json")
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k == "data"}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def _history(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "train" / "history.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(run / "train" / "model" / "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.mark.slow
def test_a_text_run_resumed_at_an_epoch_end_and_mid_epoch_ends_bitwise_equal(text_run,
                                                                             tmp_path):
    """The tiny run trains 3 epochs of 8 updates and checkpoints each epoch's end. Resumed after
    update 8 with a checkpoint every 4 updates (the cadence is no part of a checkpoint's key), it
    trains on to the end (the resume at an epoch's end); killed after update 20 (mid-way through
    the third epoch) and resumed, it ends with bitwise those weights and that history."""
    ref = text_run.run_dir
    assert sorted(p.name for p in (ref / "train" / "checkpoints").glob("*.json")) == [
        "step-00000008.json", "step-00000016.json", "step-00000024.json"]
    # Threads pinned (no part of the key either): other tests change this process's count, and
    # a reduction split over another number of threads rounds differently.
    settings = {"train.checkpoint.every_steps": 4, "train.checkpoint.keep_last": 10,
                "train.threads": 2}
    before = torch.get_num_threads()
    try:
        whole = _killed_after(ref, tmp_path / "whole", 8)
        res = danlu.run(None, settings, resume=whole, until="train")
        assert res.stages == {"data": "cached", "train": "ran"}
        assert res.metrics["train"]["resumed_from"] == "step-00000008.json"
        assert _history(whole)[0] == _history(ref)[0]  # epoch 1 comes from the checkpoint
        runs = {}
        for step in (20,):
            runs[step] = _killed_after(whole, tmp_path / f"after-{step}", step)
            res = danlu.run(None, settings, resume=runs[step], until="train")
            assert res.metrics["train"]["resumed_from"] == f"step-{step:08d}.json"
    finally:
        torch.set_num_threads(before)
    loop = read_json(whole / "train" / "checkpoints" / "step-00000020.json")["body"]["loop"]
    assert loop["epoch"] == 2 and loop["batch"] == 4  # half-way through the third epoch
    want = _weights(whole)
    for run in runs.values():
        assert _history(run) == _history(whole)
        got = _weights(run)
        assert got.keys() == want.keys()
        for k in want:
            assert torch.equal(got[k], want[k]), (run.name, k)


@pytest.mark.slow
def test_the_train_stage_merges_lora_into_the_targets_only(text_run, tmp_path):
    """The text run's data, trained again with LoRA on `query` only: the saved weights are a
    plain model (no adapter keys) whose query weights moved and whose key/value weights are
    still the pretrained ones of the kept layers."""
    run = _killed_after(text_run.run_dir, tmp_path / "lora", 0)
    res = danlu.run(None, {"train.lora": {"r": 4, "alpha": 8, "targets": ["query"]},
                           "train.epochs": 1, "train.optimizer.lr": 0.01},
                    resume=run, until="train")
    assert res.stages == {"data": "cached", "train": "ran"}
    got = _weights(run)
    assert not any("lora" in k for k in got)
    teacher = resolve_pretrained("minilm") / "model.safetensors"
    with safe_open(str(teacher), "pt") as t:
        for new, old in enumerate([0, 1]):  # the recipe keeps MiniLM's layers 0 and 1
            layer = f"bert.encoder.layer.{new}.attention.self"
            pre = f"encoder.layer.{old}.attention.self"
            q = got[f"{layer}.query.weight"] - t.get_tensor(f"{pre}.query.weight")
            assert q.abs().max() > 1e-4  # the adapter's update is in the weights
            for frozen in ("key", "value"):
                assert torch.equal(got[f"{layer}.{frozen}.weight"],
                                   t.get_tensor(f"{pre}.{frozen}.weight")), (new, frozen)
