"""Distillation benchmark: a wide CNN teacher, a student at <= 1/4 of its parameters, on Fashion-MNIST.

Does `compress`'s distillation pay where it should? The setting follows the literature where it
does: a teacher clearly better than the student can get alone, and harder data than digits.
- Data: Fashion-MNIST (Xiao et al. 2017; 70,000 28x28 grey images, 10 classes), read by danlu's
  `idx:` source from Debian's package (offline): `apt-get install -y -qq dataset-fashion-mnist`
  puts it in /usr/share/datasets/fashion-mnist/. `--rows` images (default 22,000, a seeded draw
  from all 70,000) are written as an IDX pair in a temp folder; danlu's stratified split keeps
  2,000 for validation and 10,000 for test (at most 10% and 45% of the rows), ~10,000 to
  train: a large test split makes the paired interval of the gain narrow (~+-0.4 pt).
- Teacher: danlu's `cnn` family, channels [64, 128], hidden 256, dropout 0.3 (1.68 M params),
  15 epochs of Adam 1e-3 (cosine) with horizontal flips and small shifts; pixels normalized
  per channel (per pixel, the default, breaks under shifts: see `recipe`).
- Students (two variants, each trained by `compress` distilled and alone: the ablation below):
  - "student": the teacher's shape at `--width` 0.25 (channels [16, 32], hidden 64, 0.063x the
    teacher's params) *without dropout*, named by `distill.student`. This is Hinton et al.
    2015's own setting (sec. 3, MNIST): a small net with no regularization, where the soft
    targets are the regularizer (their small net: 146 test errors alone, 74 distilled).
  - "student-dropout": the family's width student as `distill.width` builds it, keeping the
    teacher's dropout 0.3. It says whether distillation beats a student that is regularized
    alone: the honest bar for "does the teacher add anything".
  Both: T = 4 and alpha = 0.9 (Hinton et al. use T 2-20 and most weight on the soft term; the
  T^2 factor keeps its gradient scale), 30 epochs of Adam 1e-3 (cosine), on the training
  images as they are: the teacher's soft labels are computed once (`distill.augment` empty,
  danlu's default). `--augment` gives the students the teacher's flips and shifts with the
  teacher labelling each augmented batch ("consistent" function matching, Beyer et al. 2022);
  with 30 epochs that setting lost 0.2-2.3 pt (RESULTS.md's distillation notes).
- The ablation: `compress` trains the same student (same init, seed, epochs and batches) on the
  labels alone; the gain is distilled minus alone on the test rows, with its paired bootstrap
  95% CI and McNemar's test (compress/<variant>/compression.json).

Writes benchmarks/results/distill.json and (not with --quick) a section of benchmarks/RESULTS.md
with the load average before and after (a run that starts above load 1.5 says so).

    python benchmarks/distill.py              # the full run: ~9.5 min on 2 quiet cores
    python benchmarks/distill.py --quick      # a smoke check: 2,000 rows, 1 epoch, < 2 min
    python benchmarks/distill.py --rows 10000 --epochs 8 --distill-epochs 16 --width 0.48
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import danlu  # noqa: E402
from danlu.data.readers.idx import read_header  # noqa: E402
from danlu.models import models  # noqa: E402
from danlu.models.cnn import CNNConfig  # noqa: E402
from danlu.runs import read_json, write_json  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
AUGMENT = [{"hflip": {"p": 0.5}}, {"translate": {"fraction": 0.1, "p": 0.5}}]
TEACHER = {"arch": "cnn", "channels": [64, 128], "hidden": 256, "dropout": 0.3}


def load_idx(images: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [n, 28, 28], labels [n]) of one Fashion-MNIST pair."""
    import gzip

    out = []
    for p in (images, images.with_name(images.name.replace("images-idx3", "labels-idx1"))):
        with gzip.open(p, "rb") as f:
            dtype, dims = read_header(f, p)
            out.append(np.frombuffer(f.read(), dtype).reshape(dims))
    return out[0], out[1]


def write_subset(folder: Path, rows: int, seed: int) -> Path:
    """`rows` images drawn (seeded) from Fashion-MNIST's 70,000, as an IDX pair in `folder`."""
    import struct

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        sys.exit(f"no Fashion-MNIST in {FASHION}: apt-get install -y -qq dataset-fashion-mnist")
    parts = [load_idx(FASHION / f"{s}-images-idx3-ubyte.gz") for s in ("train", "t10k")]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    idx = np.sort(np.random.default_rng(seed).choice(len(y), size=min(rows, len(y)), replace=False))
    for name, a in (("fashion-images-idx3-ubyte", x[idx]), ("fashion-labels-idx1-ubyte", y[idx])):
        head = struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(f">{a.ndim}i", *a.shape)
        (folder / name).write_bytes(head + np.ascontiguousarray(a, np.uint8).tobytes())
    return folder


def recipe(source: str, args: argparse.Namespace) -> dict:
    model = TEACHER if not args.quick else {**TEACHER, "channels": [16, 32], "hidden": 64}
    kd = {"temperature": args.temperature, "alpha": args.alpha, "epochs": args.distill_epochs,
          "lr": 1e-3, "batch_size": 64, "augment": AUGMENT if args.augment else []}
    # the family's width student (what `distill.width` builds), without its dropout
    student = models["cnn"].scaled(CNNConfig.model_validate(model), args.width).model_copy(
        update={"dropout": 0.0}).model_dump(mode="json")
    return {
        "name": "distill-fashion", "seed": args.seed,
        "data": {"source": source, "split": {"val": min(0.1, 2000 / args.rows),
                                             "test": min(0.45, 10000 / args.rows)}},
        # per channel: one mean/std over all pixels. Per pixel (danlu's default) the border
        # pixels of Fashion-MNIST have std ~0.3 of 255, so a shift or flip that brings cloth to
        # the border makes inputs of hundreds of standard deviations (seen in a pilot: the
        # teacher's validation accuracy jumping 0.68-0.80 between epochs).
        "preprocess": {"per": "channel", "augment": AUGMENT},
        "model": model,
        "train": {"epochs": args.epochs, "batch_size": 64,
                  "optimizer": {"name": "adam", "lr": 1e-3}, "schedule": {"name": "cosine"},
                  "early_stopping": {"patience": 0}},
        "evaluate": {"gate": {}},  # no gate: a short --quick run must still reach compress
        "compress": {
            "variants": [{"name": "student", "distill": {**kd, "student": student}},
                         {"name": "student-dropout", "distill": {**kd, "width": args.width}}],
            "latency": {"threads": 2, "runs": 5 if args.quick else 30, "warmup": 1 if args.quick else 5}},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="2,000 rows, 1 epoch each, a narrow teacher: a smoke check; writes "
                         "results/distill-quick.json, never RESULTS.md")
    ap.add_argument("--rows", type=int, help="images drawn from the 70,000 (default 22000: "
                    "2,000 validation, 10,000 test, the rest to train)")
    ap.add_argument("--epochs", type=int, help="teacher epochs (default 15)")
    ap.add_argument("--distill-epochs", type=int, help="student epochs, distilled and alone "
                    "(default 30)")
    ap.add_argument("--width", type=float, default=0.25, help="student widths x this (default 0.25)")
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--augment", action="store_true",
                    help="students train on the teacher's flips and shifts, the teacher labelling "
                         "each augmented batch (default: the images as they are)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for distill.json")
    ap.add_argument("--keep", type=Path, help="put the data and the run folder here and keep them "
                    "(default: a temp folder, deleted); `danlu compress RUN` can then try other "
                    "distill settings on the same teacher")
    args = ap.parse_args()
    args.rows = args.rows or (2000 if args.quick else 22000)
    args.epochs = args.epochs or (1 if args.quick else 15)
    args.distill_epochs = args.distill_epochs or (1 if args.quick else 30)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    load_before, t0 = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="danlu-bench-distill-") as tmp:
        work = args.keep or Path(tmp)
        (work / "data").mkdir(parents=True, exist_ok=True)
        data = write_subset(work / "data", args.rows, args.seed)
        res = danlu.run(recipe(f"idx:{data}", args), out=work / "runs")
        doc = summary(res.run_dir, args)
    doc.update(load_before=load_before, load_after=os.getloadavg(),
               command=" ".join(["python benchmarks/distill.py", *_argv()]),
               seconds=time.perf_counter() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / ("distill-quick.json" if args.quick else "distill.json"), doc)
    print(json.dumps({"teacher_accuracy": doc["teacher_accuracy"], "seconds": doc["seconds"],
                      "best_distilled_vs_best_alone_pt": doc["best_distilled_vs_best_alone_pt"],
                      **{k: {kk: v[kk] for kk in ("alone_accuracy", "distilled_accuracy", "gain_pt",
                                                  "ci_pt", "mcnemar_p")}
                         for k, v in doc["students"].items()}}, indent=1))
    if not args.quick:
        write_markdown(doc)


def _argv() -> list[str]:
    """This run's arguments as RESULTS.md shows them: a --keep folder (a machine path) as DIR."""
    out = list(sys.argv[1:])
    for i, a in enumerate(out):
        if a == "--keep" and i + 1 < len(out):
            out[i + 1] = "DIR"
        elif a.startswith("--keep="):
            out[i] = "--keep=DIR"
    return out


def summary(run_dir: Path, args: argparse.Namespace) -> dict:
    """What the run measured: the teacher (the baseline as served), and per student variant the
    student alone and distilled."""
    rows = {r["name"]: r for r in read_json(run_dir / "compress" / "pareto.json")["variants"]}
    split = read_json(run_dir / "data" / "split.json")  # rows per split, after cleaning
    base = rows["baseline"]
    students = {}
    for name in ("student", "student-dropout"):
        rec = read_json(run_dir / "compress" / name / "compression.json")["distill"]
        g = rows[name]["distillation_gain"]
        students[name] = {
            "model": rec["student"], "params": rows[name]["params"],
            "alone_accuracy": g["undistilled_accuracy"], "distilled_accuracy": g["distilled_accuracy"],
            "gain_pt": 100 * g["accuracy_gain"], "ci_pt": [100 * c for c in g["ci"]],
            "mcnemar_p": g.get("mcnemar_p"), "significant": g["significant"],
            "training": {"distilled": rec["training"], "alone": rec["without_distillation"]["training"]}}
    s = students["student"]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"), "quick": args.quick,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "settings": {"rows": args.rows, "teacher": recipe("", args)["model"],
                     "teacher_epochs": args.epochs, "width": args.width,
                     "temperature": args.temperature, "alpha": args.alpha,
                     "distill_epochs": args.distill_epochs,
                     "augment": AUGMENT if args.augment else [], "seed": args.seed},
        "split": split["rows"], "teacher_accuracy": base["accuracy"],
        "params": {"teacher": base["params"], "student": s["params"]},
        "params_ratio": s["params"] / base["params"], "students": students,
        # the first variant's, as before: the headline numbers
        "student_alone_accuracy": s["alone_accuracy"], "distilled_accuracy": s["distilled_accuracy"],
        "gain_pt": s["gain_pt"], "ci_pt": s["ci_pt"], "mcnemar_p": s["mcnemar_p"],
        # the best distilled student against the best student trained alone, either variant
        "best_distilled_vs_best_alone_pt": 100 * (
            max(v["distilled_accuracy"] for v in students.values())
            - max(v["alone_accuracy"] for v in students.values())),
    }


def write_markdown(doc: dict) -> None:
    """A `## distillation (...)` section of RESULTS.md (the previous one replaced)."""
    s, lb, la = doc["settings"], doc["load_before"][0], doc["load_after"][0]
    noisy = " — started above load 1.5: not a quiet run" if lb > 1.5 else ""
    m, d = doc["machine"], doc["date"]
    lines = [f"\n## distillation ({d}, {m}; load average {lb:.1f} before / {la:.1f} after{noisy}; "
             f"{doc['seconds'] / 60:.1f} min)\n",
             "| benchmark | ours | baseline | ratio | machine | date |", "|---|---|---|---|---|---|"]
    what = {"student": "student without dropout (Hinton et al.'s setting)",
            "student-dropout": "student with the teacher's dropout 0.3"}
    for name, v in doc["students"].items():
        lines.append(f"| fashion-mnist {what[name]}: distilled vs alone (test accuracy) | "
                     f"{v['distilled_accuracy']:.4f} | {v['alone_accuracy']:.4f} | "
                     f"{v['gain_pt']:+.2f} pt [{v['ci_pt'][0]:+.2f}, {v['ci_pt'][1]:+.2f}], McNemar p "
                     f"{v['mcnemar_p']:.3g} | {m} | {d} |")
    best_alone = max(v["alone_accuracy"] for v in doc["students"].values())
    lines += [
        f"| fashion-mnist best distilled vs best alone (either student) | "
        f"{max(v['distilled_accuracy'] for v in doc['students'].values()):.4f} | {best_alone:.4f} | "
        f"{doc['best_distilled_vs_best_alone_pt']:+.2f} pt | {m} | {d} |",
        f"| fashion-mnist teacher vs best student alone (test accuracy) | "
        f"{doc['teacher_accuracy']:.4f} | {best_alone:.4f} | "
        f"{100 * (doc['teacher_accuracy'] - best_alone):+.2f} pt | {m} | {d} |",
        f"| fashion-mnist student params vs teacher | {doc['params']['student']:,} | "
        f"{doc['params']['teacher']:,} | {doc['params_ratio']:.3f}x | {m} | {d} |", "",
        f"Settings: {s['rows']:,} images (split {doc['split']}), teacher cnn {s['teacher']['channels']} "
        f"hidden {s['teacher']['hidden']} dropout {s['teacher']['dropout']} for "
        f"{s['teacher_epochs']} epochs with flips and shifts; students at width {s['width']} "
        f"({doc['students']['student']['model']['channels']}, hidden "
        f"{doc['students']['student']['model']['hidden']}), T = {s['temperature']}, alpha = "
        f"{s['alpha']}, {s['distill_epochs']} epochs, "
        + ("the teacher labelling the same augmented batches (hflip, translate 0.1)"
           if s["augment"] else "on the training images as they are (soft labels computed once)")
        + f"; `{doc['command']}`."]
    md = HERE / "RESULTS.md"
    text = md.read_text()
    marker = "\n## distillation ("
    if marker in text:
        start = text.index(marker)
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end:] if end != -1 else "")
    from danlu.runs import atomic_write

    atomic_write(md, text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
