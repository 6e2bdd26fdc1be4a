"""Training throughput: danlu's fit() vs a hand-written PyTorch loop, same everything.

Same model (the digits recipe's CNN), data (digits training split, z-scored), batch size
(64), optimizer (Adam, lr 0.002) and shuffling; fresh model from the same seed each round.
Both sides run in this one process, alternating, ROUNDS times; we report medians of
samples/second. fit() validates every epoch; to compare the training loops fairly, both
sides get the same small validation pass each epoch (64 rows: fit() computes its full
metrics on it, the hand loop an accuracy). fit() is called without a checkpoint store (the
stage's per-epoch checkpoint is file I/O, measured separately below).

    python benchmarks/train_loop.py  ->  benchmarks/results/train_loop.json + a RESULTS.md row
        # ~30 s on a quiet 2-core machine
    python benchmarks/train_loop.py --quick   (1 round of 1 epoch: checks it runs, ~10 s; a temp
                                              folder, RESULTS.md untouched)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import Bench, add_args
from torch import nn

from danlu.data.readers import open_reader
from danlu.features import features, heads
from danlu.models import family
from danlu.models.packaged import Encoding
from danlu.recipe import load_recipe
from danlu.train.checkpoint import CheckpointStore
from danlu.train.loop import fit

ROUNDS, EPOCHS, BATCH, LR, THREADS = 9, 5, 64, 0.002, 2
QUICK_ROUNDS, QUICK_EPOCHS = 1, 1
HERE = Path(__file__).resolve().parent


def hand_loop(model: nn.Module, x, y, xv, yv, seed: int, epochs: int) -> None:
    """What one writes by hand: shuffle, forward, loss, backward, step; validate each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.inference_mode():
            _ = (model(xv).argmax(1) == yv).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_ROUNDS} round of {QUICK_EPOCHS} epoch: a check that it runs; "
                         "RESULTS.md is not touched")
    add_args(ap)
    args = ap.parse_args()
    bench = Bench.start("train_loop", args)
    rounds, epochs = (QUICK_ROUNDS, QUICK_EPOCHS) if args.quick else (ROUNDS, EPOCHS)
    torch.set_num_threads(THREADS)
    recipe = load_recipe(HERE.parent / "recipes" / "digits.yaml",
                         {"train.epochs": epochs, "train.batch_size": BATCH,
                          "train.optimizer.lr": LR, "train.optimizer.weight_decay": 0.0,
                          "train.early_stopping.patience": 0})
    reader = open_reader("sklearn:digits")
    t = next(reader.chunks())
    # The digits image feature, fitted on the 1,400 training rows; its in-graph part (the
    # z-score) gives both sides the same normalized tensors, as the train stage feeds fit().
    pixels = features["image"]("pixels", reader.columns, {"shape": [1, 8, 8]})
    pixels.partial_fit(t.columns["pixels"][:1400])
    head = heads["category"](None, reader.label_values)
    x = Encoding([pixels]).network_input({"pixels": t.columns["pixels"]})
    y = torch.from_numpy(t.labels)
    x, y, xv, yv = x[:1400], y[:1400], x[1400:1464], y[1400:1464]

    def model() -> nn.Module:
        torch.manual_seed(0)
        return family(recipe.model).build(recipe.model, [pixels], head)

    ours, base = [], []
    fit(model(), (x, y), (xv, yv), head, recipe.train, seed=0)  # warm-up
    hand_loop(model(), x, y, xv, yv, seed=0, epochs=epochs)
    for _ in range(rounds):
        m = model()
        t0 = time.perf_counter()
        fit(m, (x, y), (xv, yv), head, recipe.train, seed=0)
        ours.append(epochs * len(x) / (time.perf_counter() - t0))
        m = model()
        t0 = time.perf_counter()
        hand_loop(m, x, y, xv, yv, seed=0, epochs=epochs)
        base.append(epochs * len(x) / (time.perf_counter() - t0))
    # The stage also writes a checkpoint every epoch: its cost, on its own.
    with tempfile.TemporaryDirectory() as d:
        store = CheckpointStore(Path(d), recipe.train.checkpoint, "bench")
        m = model()
        t0 = time.perf_counter()
        fit(m, (x, y), (xv, yv), head, recipe.train, seed=0, checkpoints=store)
        with_ckpt = epochs * len(x) / (time.perf_counter() - t0)
    ratio = statistics.median(ours) / statistics.median(base)
    bench.finish()
    result = {
        "benchmark": "train_loop", "unit": "samples/s (training, incl. 64-row validation/epoch)",
        "model": "digits CNN channels [32, 64], hidden 128", "batch_size": BATCH, "epochs": epochs,
        "rows": len(x), "rounds": rounds, "quick": args.quick, "ours_median": statistics.median(ours),
        "baseline_median": statistics.median(base), "ratio": ratio, "ours": ours,
        "baseline": base, "ours_with_epoch_checkpoints": with_ckpt,
        "torch": torch.__version__, "threads": THREADS,
    }
    bench.save("train_loop.json", result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("ours", "baseline")}, indent=2))
    bench.rows("| train_loop ", [
        f"| train_loop (fit() vs hand-written loop, samples/s, digits CNN b64, torch "
        f"{torch.__version__}, {THREADS} threads) | {result['ours_median']:.0f} | "
        f"{result['baseline_median']:.0f} | {ratio:.2f}x | {bench.cell()}"])


if __name__ == "__main__":
    main()
