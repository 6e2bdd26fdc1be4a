"""Compression benchmark: baseline vs each variant on three models, in one process run.

Models: the digits CNN (tiny), a compute-bound CNN (64-128-256 channels on digits upscaled to
1x32x32) and an MLP on breast_cancer. Each is trained by `danlu.run`, then `compress` builds
static/dynamic int8, 80% gradual magnitude pruning, 50% structured pruning and a distilled
student (widths x 0.5), and measures accuracy, size and ORT latency at batch 1 and 32.
Writes benchmarks/results/compression.json and a table in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import danlu  # noqa: E402
from danlu.compress.config import CompressConfig  # noqa: E402
from danlu.compress.stage import compress  # noqa: E402
from danlu.runs import Run, read_json  # noqa: E402

WORK = HERE / ".work"


def digits32() -> Path:
    """sklearn digits upscaled 8x8 -> 32x32 (bilinear), as Parquet: a compute-bound CNN input."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from sklearn.datasets import load_digits

    path = WORK / "digits32.parquet"
    if path.is_file():
        return path
    d = load_digits()
    x = torch.nn.functional.interpolate(torch.from_numpy(d.images).float()[:, None], size=(32, 32),
                                        mode="bilinear", align_corners=False).reshape(len(d.images), -1)
    cols = {f"p{i}": x[:, i].numpy() for i in range(x.shape[1])}
    cols["label"] = d.target.astype(np.int64)
    WORK.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def variants(epochs: int, distill_epochs: int, mlp: bool) -> list[dict]:
    v = [{"name": "int8", "quantize": {"mode": "static", "calibration_samples": 512, "per_channel": True}},
         {"name": "dyn-int8", "quantize": {"mode": "dynamic"}},
         {"name": "pruned80", "prune": {"method": "magnitude", "scope": "global", "sparsity": 0.8,
                                        "schedule": "gradual", "finetune_epochs": epochs}},
         {"name": "slim50", "prune": {"method": "structured", "ratio": 0.5, "finetune_epochs": epochs}},
         {"name": "student", "distill": {"width": 0.5, "temperature": 4.0, "alpha": 0.7,
                                         "epochs": distill_epochs}}]
    if mlp:
        v.append({"name": "auto-int8", "quantize": {"mode": "auto"}})
    return v


MODELS = {
    "digits-cnn": ({"data": {"source": "sklearn:digits"},
                    "model": {"arch": "cnn", "channels": [32, 64], "hidden": 128, "dropout": 0.3},
                    "train": {"epochs": 30, "optimizer": {"name": "adam", "lr": 0.002}}}, 5, 30),
    "cnn-64-128-256": ({"data": None, "model": {"arch": "cnn", "channels": [64, 128, 256],
                                                "hidden": 256, "dropout": 0.3},
                        "train": {"epochs": 8, "optimizer": {"name": "adam", "lr": 0.001}}}, 3, 8),
    "mlp-breast-cancer": ({"data": {"source": "sklearn:breast_cancer"},
                           "model": {"arch": "mlp", "hidden": [256, 256], "dropout": 0.1},
                           "train": {"epochs": 60, "optimizer": {"name": "adam", "lr": 0.001}}}, 10, 60),
}


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                     "date": datetime.now(UTC).strftime("%Y-%m-%d"), "load_before": os.getloadavg(),
                     "models": {}}
    for name, (recipe, epochs, kd_epochs) in MODELS.items():
        if recipe["data"] is None:
            recipe = {**recipe, "data": {"source": f"parquet:{digits32()}", "target": "label",
                                         "image_shape": [1, 32, 32]}}
        t0 = time.perf_counter()
        run = danlu.run({"name": name, "seed": 0, "evaluate": {"gate": {}}, **recipe},
                        out=WORK / "runs")
        cfg = CompressConfig.model_validate({
            "variants": variants(epochs, kd_epochs, mlp=name.startswith("mlp")),
            "latency": {"threads": 2, "runs": 100 if name != "cnn-64-128-256" else 50}})
        compress(Run.open(run.run_dir), cfg)
        report = read_json(run.run_dir / "compress" / "pareto.json")
        rows = {r["name"]: r for r in report["variants"]}
        kd = read_json(run.run_dir / "compress" / "student" / "compression.json")["distill"]
        undistilled = kd["without_distillation"]["test_accuracy"]
        results["models"][name] = {"rows": rows, "chosen": report["chosen"],
                                   "student_undistilled_accuracy": undistilled,
                                   "seconds": time.perf_counter() - t0, "run": str(run.run_dir)}
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    results["load_after"] = os.getloadavg()
    results["goals"] = goals(results["models"])
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "compression.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_markdown(results)


def goals(models: dict) -> dict:
    big = models["cnn-64-128-256"]["rows"]
    b, q, p, s, kd = big["baseline"], big["int8"], big["pruned80"], big["slim50"], big["student"]
    und = models["cnn-64-128-256"]["student_undistilled_accuracy"]
    def goal(value: float, met: bool) -> dict:
        return {"value": value, "met": bool(met)}

    drop_q, drop_p = b["accuracy"] - q["accuracy"], b["accuracy"] - p["accuracy"]
    return {
        "static int8 >= 2x faster at b32": goal(b["b32_ms"] / q["b32_ms"], b["b32_ms"] >= 2 * q["b32_ms"]),
        "static int8 >= 3.5x smaller": goal(b["size_bytes"] / q["size_bytes"],
                                            b["size_bytes"] >= 3.5 * q["size_bytes"]),
        "static int8 drop <= 1 pt": goal(drop_q, drop_q <= 0.01),
        "80% sparsity drop <= 1 pt": goal(drop_p, drop_p <= 0.01),
        "50% structured >= 1.5x lower b32 latency": goal(b["b32_ms"] / s["b32_ms"],
                                                         b["b32_ms"] >= 1.5 * s["b32_ms"]),
        "student <= 1/4 params": goal(kd["params"] / b["params"], kd["params"] <= b["params"] / 4),
        "student >= 97% of teacher accuracy": goal(kd["accuracy"] / b["accuracy"],
                                                   kd["accuracy"] >= 0.97 * b["accuracy"]),
        "student beats undistilled student": goal(kd["accuracy"] - und, kd["accuracy"] > und),
    }


def write_markdown(results: dict) -> None:
    lines = [f"\n## compression ({results['date']}, {results['machine']}; load average "
             f"{results['load_before'][0]:.1f} before / {results['load_after'][0]:.1f} after: the 2 cores "
             "were shared with other engineers' jobs, timings are noisy)\n",
             "| benchmark | ours | baseline | ratio | machine | date |", "|---|---|---|---|---|---|"]
    for model, m in results["models"].items():
        base = m["rows"]["baseline"]
        for name, r in m["rows"].items():
            if name == "baseline":
                continue
            status = "" if r["passed"] else " (rejected)"
            lines.append(
                f"| {model} {name}{status} b32 latency | {r['b32_ms']:.3f} ms | {base['b32_ms']:.3f} ms | "
                f"{base['b32_ms'] / r['b32_ms']:.2f}x faster | {results['machine']} | {results['date']} |")
            lines.append(
                f"| {model} {name} size (onnx / zip) | {r['size_bytes'] / 1e3:.0f} / "
                f"{r['deflated_bytes'] / 1e3:.0f} KB "
                f"| {base['size_bytes'] / 1e3:.0f} / {base['deflated_bytes'] / 1e3:.0f} KB | "
                f"{base['deflated_bytes'] / r['deflated_bytes']:.2f}x smaller (zip) | {results['machine']} | "
                f"{results['date']} |")
            lines.append(
                f"| {model} {name} test accuracy (b1 {r['b1_ms']:.3f} ms) | {r['accuracy']:.4f} | "
                f"{base['accuracy']:.4f} (b1 {base['b1_ms']:.3f} ms) | "
                f"{r['accuracy'] - base['accuracy']:+.4f} | "
                f"{results['machine']} | {results['date']} |")
    lines += ["", "Goals (compute-bound CNN):", ""]
    lines += [f"- {g}: {v['value']:.3f} — {'met' if v['met'] else 'NOT met'}"
              for g, v in results["goals"].items()]
    md = HERE / "RESULTS.md"
    head = ("# Benchmark results\n\n| benchmark | ours | baseline | ratio | machine | date |\n"
            "|---|---|---|---|---|---|\n")
    text = md.read_text() if md.is_file() else head
    marker = "\n## compression ("
    if marker in text:  # replace the previous compression section
        start = text.index(marker)
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end:] if end != -1 else "")
    md.write_text(text.rstrip("\n") + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
