"""Text training: length bucketing cuts padding, and a text run resumes exactly mid-epoch."""

from __future__ import annotations

import json

import pytest
import torch
from danlu.models.text import encode_texts, resolve_pretrained
from danlu.train.text import token_lengths
from safetensors import safe_open

import danlu
from danlu.data.readers import CorpusReader
from danlu.data.tokenize import TextEncoder
from danlu.models import InputSpec, build_model
from danlu.models.config import TransformerConfig
from danlu.runs import read_json
from danlu.train.checkpoint import CheckpointStore
from danlu.train.loop import fit
from danlu.train.state import LoopState, epoch_batches
from tests.train.helpers import train_cfg

LABELS = ["business", "entertainment", "politics", "sports", "tech"]


def _bbc(rows: int, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    chunk = next(CorpusReader("bbc_news", 10_000).chunks())
    pick = torch.randperm(2225, generator=torch.Generator().manual_seed(0))[:rows]
    enc = TextEncoder.from_folder(resolve_pretrained("minilm"), max_length)
    return encode_texts(enc, chunk.text[pick.numpy()]), torch.from_numpy(chunk.labels[pick.numpy()])


def _padding(batches, lengths: torch.Tensor) -> int:
    """Pad tokens when each batch is padded to its own longest row."""
    return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)


def test_length_bucketing_cuts_padding_and_keeps_every_row_once():
    x, _ = _bbc(1200, 512)  # BBC articles run from ~100 to well over 512 tokens
    lengths = token_lengths(x)
    plain = epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), len(x), 32)
    state = LoopState(gen=torch.Generator().manual_seed(0))
    bucketed = epoch_batches(state, len(x), 32, lengths)
    assert len(bucketed) == len(plain) == 38
    assert torch.equal(torch.sort(torch.cat(bucketed)).values, torch.arange(len(x)))
    naive, cut = _padding(plain, lengths), _padding(bucketed, lengths)
    assert cut < 0.2 * naive, (cut, naive)
    # seeded: the same generator state gives the same batches, in the same order
    again = epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), len(x), 32, lengths)
    assert all(torch.equal(a, b) for a, b in zip(bucketed, again, strict=True))
    # a resumed epoch (batch > 0) rebuilds the same order from the epoch's saved rng state
    state.batch = 5
    assert all(torch.equal(a, b) for a, b in
               zip(bucketed, epoch_batches(state, len(x), 32, lengths), strict=True))
    # and batch order is shuffled, not sorted by length
    firsts = [int(lengths[b].max()) for b in bucketed]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)


def _text_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TransformerConfig(max_length=32, layers=[0], freeze={"embeddings": True}),
                       InputSpec(0), len(LABELS))


@pytest.mark.slow
def test_a_text_run_resumed_mid_epoch_ends_bitwise_equal(tmp_path):
    x, y = _bbc(120, 32)
    train, val = (x[:96], y[:96]), (x[96:], y[96:])
    cfg = train_cfg(epochs=2, batch_size=16, optimizer={"name": "adamw", "lr": 1e-3},
                    schedule={"name": "linear", "warmup_epochs": 0.5}, precision="bf16",
                    checkpoint={"every_steps": 4, "every_epochs": 0, "keep_last": 10})
    store = CheckpointStore(tmp_path / "ckpt", cfg.checkpoint, "k")
    torch.manual_seed(0)  # dropout draws
    ref_model = _text_model()
    ref = fit(ref_model, train, val, LABELS, cfg, seed=0, checkpoints=store,
              lengths=token_lengths(train[0]))
    # the update-8 checkpoint is mid-way through epoch 2 (6 updates an epoch)
    ckpt = CheckpointStore.read(tmp_path / "ckpt" / "step-00000008.json")
    assert ckpt.body["loop"]["epoch"] == 1 and ckpt.body["loop"]["batch"] == 2
    torch.manual_seed(123)  # whatever the process did before, the checkpoint restores it
    model = _text_model()
    res = fit(model, train, val, LABELS, cfg, seed=0, resume=ckpt,
              lengths=token_lengths(train[0]))
    def drop_time(h): return [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert drop_time(res.history) == drop_time(ref.history)
    for k, v in ref_model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k


@pytest.mark.slow
def test_the_train_stage_merges_lora_into_the_targets_only(tmp_path):
    path = tmp_path / "news.jsonl"
    chunk = next(CorpusReader("bbc_news", 10_000).chunks())
    path.write_text("".join(json.dumps({"text": chunk.text[i], "label": LABELS[chunk.labels[i]]})
                            + "\n" for i in range(0, 2225, 25)))
    res = danlu.run({"name": "lora", "data": {"source": f"jsonl:{path}"},
                     "model": {"arch": "transformer", "max_length": 32, "layers": [1]},
                     "train": {"epochs": 1, "batch_size": 16, "optimizer": {"lr": 0.01},
                               "lora": {"r": 4, "targets": ["query"]}}},
                    out=tmp_path / "runs", until="train")
    folder = res.run_dir / "train" / "model"
    assert read_json(res.run_dir / "train" / "model.json")["lora"]["targets"] == ["query"]
    teacher = resolve_pretrained("minilm") / "model.safetensors"
    with safe_open(str(folder / "model.safetensors"), "pt") as got, safe_open(str(teacher), "pt") as t:
        assert not any("lora" in k for k in got.keys())
        layer = "bert.encoder.layer.0.attention.self"  # the teacher's layer 1, merged
        teacher_q = t.get_tensor("encoder.layer.1.attention.self.query.weight")
        q = got.get_tensor(f"{layer}.query.weight") - teacher_q
        assert q.abs().max() > 1e-4  # the adapter's update is in the weights
        for frozen in ("key", "value"):
            assert torch.equal(got.get_tensor(f"{layer}.{frozen}.weight"),
                               t.get_tensor(f"encoder.layer.1.attention.self.{frozen}.weight"))
