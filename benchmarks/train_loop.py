"""Training throughput: danlu's fit() vs a hand-written PyTorch loop, same everything.

Same model (the digits recipe's CNN), data (digits training split, z-scored), batch size
(64), optimizer (Adam, lr 0.002) and shuffling; fresh model from the same seed each round.
Both sides run in this one process, alternating, ROUNDS times; we report medians of
samples/second. fit() validates every epoch; to compare the training loops fairly, both
sides get the same small validation pass each epoch (64 rows: fit() computes its full
metrics on it, the hand loop an accuracy). fit() is called without a checkpoint store (the
stage's per-epoch checkpoint is file I/O, measured separately below).

    python benchmarks/train_loop.py  ->  benchmarks/results/train_loop.json + a RESULTS.md row
    python benchmarks/train_loop.py --quick --out /tmp/x   (1 round of 1 epoch: checks it runs;
                                                           RESULTS.md untouched)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from danlu.data.readers import open_reader  # noqa: E402
from danlu.features import features, heads  # noqa: E402
from danlu.models import family  # noqa: E402
from danlu.models.packaged import Encoding  # noqa: E402
from danlu.recipe import load_recipe  # noqa: E402
from danlu.train.checkpoint import CheckpointStore  # noqa: E402
from danlu.train.loop import fit  # noqa: E402

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
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="folder for train_loop.json (default benchmarks/results)")
    args = ap.parse_args()
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
    load = os.getloadavg()[0]
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
               f"torch {torch.__version__}, {THREADS} threads, load avg {load:.1f}")
    result = {
        "benchmark": "train_loop", "unit": "samples/s (training, incl. 64-row validation/epoch)",
        "model": "digits CNN channels [32, 64], hidden 128", "batch_size": BATCH, "epochs": epochs,
        "rows": len(x), "rounds": rounds, "quick": args.quick, "ours_median": statistics.median(ours),
        "baseline_median": statistics.median(base), "ratio": ratio, "ours": ours,
        "baseline": base, "ours_with_epoch_checkpoints": with_ckpt, "machine": machine,
        "date": datetime.now(UTC).date().isoformat(),
        "note": "other engineers' jobs shared the 2 cores" if load > 2 else "",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_loop.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("ours", "baseline")}, indent=2))
    if args.quick:
        return
    row = (f"| train_loop (fit() vs hand-written loop, samples/s, digits CNN b64) | "
           f"{result['ours_median']:.0f} | {result['baseline_median']:.0f} | {ratio:.2f}x | "
           f"{machine}{'; shared cores' if load > 2 else ''} | {result['date']} |")
    _write_row(HERE / "RESULTS.md", "| train_loop ", row)


def _write_row(path: Path, prefix: str, row: str) -> None:
    """Replace this benchmark's row in RESULTS.md (created with its header if absent)."""
    header = "| benchmark | ours | baseline | ratio | machine | date |\n|---|---|---|---|---|---|\n"
    lines = path.read_text().splitlines() if path.is_file() else header.splitlines()
    lines = [line for line in lines if not line.startswith(prefix)] + [row]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
