"""Fine-tuning MiniLM-L6 on BBC News: seconds per training update for the recipe's choices.

`python benchmarks/text_train.py [--rounds 5]`: one update = forward + backward + AdamW step on
a real batch of 32 BBC articles at max_length 128, for full fp32 (the baseline a user has
today), full bf16 autocast, bf16 with frozen embeddings (recipes/text.yaml), and bf16 LoRA r=8
on query/value. Variants run interleaved, round by round, on the same batches, so a busy
machine slows all alike; medians are reported. Also counts padding tokens per epoch with
length bucketing vs plain shuffled batches (both padded per batch) vs fixed max_length.
Writes benchmarks/results/text_train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from danlu.data.readers import CorpusReader
from danlu.data.tokenize import TextEncoder
from danlu.models import InputSpec, build_model
from danlu.models.config import TransformerConfig
from danlu.models.text import apply_lora, encode_texts, resolve_pretrained
from danlu.train.config import LoraConfig
from danlu.train.state import LoopState, epoch_batches

VARIANTS = {  # name -> (precision, freeze embeddings, lora)
    "full fp32": ("fp32", False, None),
    "full bf16": ("bf16", False, None),
    "bf16, frozen embeddings (recipe)": ("bf16", True, None),
    "bf16 LoRA r8 query,value": ("bf16", False, LoraConfig()),
}


def _model(freeze: bool, lora: LoraConfig | None) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model(TransformerConfig(freeze={"embeddings": freeze}), InputSpec(0), 5)
    return (apply_lora(m, lora) if lora else m).train()


def _update(model, opt, x, y, precision: str) -> float:
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def _padding(x: torch.Tensor, width: int) -> dict[str, int]:
    lengths = x[:, 1].sum(1)
    gen = torch.Generator().manual_seed(0)
    plain = epoch_batches(LoopState(gen=gen), len(x), 32)
    bucketed = epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), len(x), 32, lengths)

    def pad(batches):
        return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)

    return {"real_tokens": int(lengths.sum()), "pad_fixed_max_length": int(width * len(x) - lengths.sum()),
            "pad_per_batch": pad(plain), "pad_per_batch_bucketed": pad(bucketed)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    chunk = next(CorpusReader("bbc_news", 10_000).chunks())
    pick = torch.randperm(2225, generator=torch.Generator().manual_seed(0))[:32 * (args.rounds + 1)]
    enc = TextEncoder.from_folder(resolve_pretrained("minilm"), 128)
    x = encode_texts(enc, chunk.text[pick.numpy()])
    y = torch.from_numpy(chunk.labels[pick.numpy()])
    models = {}
    for name, (_, freeze, lora) in VARIANTS.items():
        m = _model(freeze, lora)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
        trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
        models[name] = (m, opt, trainable)
    times: dict[str, list[float]] = {n: [] for n in VARIANTS}
    load_start = os.getloadavg()[0]
    for r in range(args.rounds + 1):  # round 0 warms up
        xb, yb = x[32 * r:32 * (r + 1)], y[32 * r:32 * (r + 1)]
        for name, (prec, _, _) in VARIANTS.items():
            m, opt, _ = models[name]
            s = _update(m, opt, xb, yb, prec)
            if r:
                times[name].append(s)
    base = statistics.median(times["full fp32"])
    result = {
        "what": "seconds per training update, batch 32 BBC articles, max_length 128, AdamW",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"load avg {load_start:.1f} at start / {os.getloadavg()[0]:.1f} at end "
                   "(shared with other engineers' jobs)",
        "rounds": args.rounds,
        "variants": {n: {"median_s": statistics.median(t), "all_s": t,
                         "speedup_vs_fp32": base / statistics.median(t),
                         "trainable_params": models[n][2]} for n, t in times.items()},
        "padding_bbc_all_2225": {str(w): _padding(encode_texts(
            TextEncoder.from_folder(resolve_pretrained("minilm"), w), chunk.text), w) for w in (128, 512)},
    }
    out = Path(__file__).parent / "results" / "text_train.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
