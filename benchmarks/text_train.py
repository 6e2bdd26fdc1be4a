"""Fine-tuning MiniLM-L6 on BBC News: seconds per training update for the recipe's choices.

`python benchmarks/text_train.py [--rounds 5]`: one update = forward + backward + AdamW step on
a real batch of 32 BBC articles at max_length 128, for full fp32 (the baseline a user has
today), full bf16 autocast, bf16 with frozen embeddings (recipes/text.yaml), and bf16 LoRA r=8
on query/value. Each network is the transformer family's own (`build`, then `prepare` as the
train stage does it: LoRA adapters where train.lora is set), fed the text feature's packed
tokens. Variants run interleaved, round by round, on the same batches, so a busy machine slows
all alike; medians are reported. Also counts padding tokens per epoch with length bucketing vs
plain shuffled batches (both padded per batch) vs fixed max_length.
Writes benchmarks/results/text_train.json and two RESULTS.md rows.

    python benchmarks/text_train.py              # 5 rounds: ~2 min quiet (4 variants x 6 updates)
    python benchmarks/text_train.py --quick      # a check that it runs: 1 round of batches of 4
                                                 # at 32 tokens, a temp folder, RESULTS.md untouched
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
from _common import Bench, add_args

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
    add_args(ap)
    args = ap.parse_args()
    bench = Bench.start("text_train", args)
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
    for r in range(args.rounds + 1):  # round 0 warms up
        xb, yb = x[b * r:b * (r + 1)], y[b * r:b * (r + 1)]
        for name, (prec, _, _) in VARIANTS.items():
            m, opt, _ = nets[name]
            s = _update(m, opt, xb, yb, prec)
            if r:
                times[name].append(s)
    base = statistics.median(times["full fp32"])
    bench.finish()
    result = {
        "what": f"seconds per training update, batch {b} BBC articles, max_length "
                f"{args.max_length}, AdamW",
        "torch": torch.__version__, "rounds": args.rounds,
        "variants": {n: {"median_s": statistics.median(t), "all_s": t,
                         "speedup_vs_fp32": base / statistics.median(t),
                         "trainable_params": nets[n][2]} for n, t in times.items()},
        f"padding_bbc_all_{len(texts)}": {str(w): _padding(texts, w) for w in (128, 512)},
    }
    bench.save("text_train.json", result)
    print(json.dumps(result, indent=1))
    write_rows(bench, result, b, args.max_length, len(texts))


def write_rows(bench: Bench, result: dict, batch: int, max_length: int, n_texts: int) -> None:
    """The update-time row (bf16 variants vs fp32) and the padding row (bucketing vs shuffled)."""
    v = result["variants"]
    names = [n for n in VARIANTS if n != "full fp32"]
    ours = " / ".join(f"{v[n]['median_s']:.2f}" for n in names)
    ratio = " / ".join(f"{v[n]['speedup_vs_fp32']:.2f}x" for n in names)
    pad = result[f"padding_bbc_all_{n_texts}"]["512"]
    fewer = pad["pad_per_batch"] / max(pad["pad_per_batch_bucketed"], 1)
    bench.rows("| text_train:", [
        f"| text_train: s per update, MiniLM-L6 b{batch} len{max_length} AdamW, BBC (bf16 / "
        f"bf16+frozen emb. / bf16 LoRA r8 vs fp32; median of {result['rounds']}, interleaved) | "
        f"{ours} | {v['full fp32']['median_s']:.2f} (fp32) | {ratio} | {bench.cell()}",
        f"| text_train: pad tokens per epoch, BBC all {n_texts:,} at max_length 512 "
        f"(length-bucketed vs shuffled batches, both padded per batch) | "
        f"{pad['pad_per_batch_bucketed']:,} | {pad['pad_per_batch']:,} | "
        f"{1 / fewer:.3f}x ({fewer:.1f}x fewer) | {bench.cell()}"])


if __name__ == "__main__":
    main()
