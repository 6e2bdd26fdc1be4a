"""Fine-tuning MiniLM-L6 on BBC News: seconds per training update for the recipe's choices.

`python benchmarks/text_train.py [--rounds 5]`: one update = forward + backward + AdamW step on
a real batch of 32 BBC articles at max_length 128, for full fp32 (the baseline a user has
today), full bf16 autocast, bf16 with frozen embeddings (recipes/text.yaml), and bf16 LoRA r=8
on query/value. Each network is the transformer family's own (`build`, then `prepare` as the
train stage does it: LoRA adapters where train.lora is set), fed the text feature's packed
tokens. Variants run interleaved, round by round, on the same batches, so a busy machine slows
all alike; medians are reported. Also counts padding tokens per epoch with length bucketing vs
plain shuffled batches (both padded per batch) vs fixed max_length.
Writes benchmarks/results/text_train.json.

    python benchmarks/text_train.py --quick --out DIR   # a check that it runs: 1 round of
                                                        # batches of 4 at 32 tokens
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from danlu.data.readers import CorpusReader
from danlu.features import features, heads
from danlu.models import models
from danlu.models.packaged import Encoding
from danlu.models.transformer import TransformerConfig
from danlu.train.config import LoraConfig, TrainConfig
from danlu.train.state import LoopState, epoch_batches

FAMILY = models["transformer"]
VARIANTS = {  # name -> (precision, freeze embeddings, lora)
    "full fp32": ("fp32", False, None),
    "full bf16": ("bf16", False, None),
    "bf16, frozen embeddings (recipe)": ("bf16", True, None),
    "bf16 LoRA r8 query,value": ("bf16", False, LoraConfig()),
}


def _text(max_length: int):
    """The text feature, its tokenizer bound by the family (MiniLM's, cut at max_length)."""
    text = features["text"]("text", ["text"])
    FAMILY.bind(TransformerConfig(max_length=max_length), [text])
    return text


def _model(text, head, freeze: bool, lora: LoraConfig | None) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = TransformerConfig(max_length=text.max_length_, freeze={"embeddings": freeze})
    return FAMILY.prepare(FAMILY.build(cfg, [text], head), TrainConfig(lora=lora)).train()


def _update(model, opt, x, y, precision: str) -> float:
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def _padding(texts: np.ndarray, width: int) -> dict[str, int]:
    lengths = torch.from_numpy(_text(width).sort_key(texts))  # tokens per text, cut at width
    gen = torch.Generator().manual_seed(0)
    plain = epoch_batches(LoopState(gen=gen), len(texts), 32)
    bucketed = epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), len(texts), 32,
                             lengths)

    def pad(batches):
        return sum(int(lengths[b].max() * len(b) - lengths[b].sum()) for b in batches)

    return {"real_tokens": int(lengths.sum()),
            "pad_fixed_max_length": int(width * len(texts) - lengths.sum()),
            "pad_per_batch": pad(plain), "pad_per_batch_bucketed": pad(bucketed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--quick", action="store_true",
                    help="1 round, batches of 4 at 32 tokens: a check that it runs")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                    help="folder for text_train.json (default benchmarks/results)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.batch, args.max_length = 1, 4, 32
    b = args.batch
    torch.set_num_threads(os.cpu_count() or 1)
    reader = CorpusReader("bbc_news", 10_000)
    chunk = next(reader.chunks())
    texts = chunk.columns["text"]
    pick = torch.randperm(len(texts), generator=torch.Generator().manual_seed(0))[:b * (args.rounds + 1)]
    text = _text(args.max_length)
    head = heads["category"](None, reader.label_values)
    x = Encoding([text]).network_input({"text": texts[pick.numpy()]})
    y = torch.from_numpy(chunk.labels[pick.numpy()])
    nets = {}
    for name, (_, freeze, lora) in VARIANTS.items():
        m = _model(text, head, freeze, lora)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
        trainable = sum(p.numel() for p in m.parameters() if p.requires_grad)
        nets[name] = (m, opt, trainable)
    times: dict[str, list[float]] = {n: [] for n in VARIANTS}
    load_start = os.getloadavg()[0]
    for r in range(args.rounds + 1):  # round 0 warms up
        xb, yb = x[b * r:b * (r + 1)], y[b * r:b * (r + 1)]
        for name, (prec, _, _) in VARIANTS.items():
            m, opt, _ = nets[name]
            s = _update(m, opt, xb, yb, prec)
            if r:
                times[name].append(s)
    base = statistics.median(times["full fp32"])
    result = {
        "what": f"seconds per training update, batch {b} BBC articles, max_length "
                f"{args.max_length}, AdamW",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"load avg {load_start:.1f} at start / {os.getloadavg()[0]:.1f} at end "
                   "(shared with other engineers' jobs)",
        "rounds": args.rounds, "quick": args.quick,
        "variants": {n: {"median_s": statistics.median(t), "all_s": t,
                         "speedup_vs_fp32": base / statistics.median(t),
                         "trainable_params": nets[n][2]} for n, t in times.items()},
        f"padding_bbc_all_{len(texts)}": {str(w): _padding(texts, w) for w in (128, 512)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "text_train.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
