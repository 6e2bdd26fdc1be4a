"""Compression of text (transformer) models: a shallower student distilled from the teacher, and
ORT dynamic int8, measured and gated like every other variant (compress/stage.py).

A text variant is a text package (export/text.py) under compress/<name>/: its runtimes are
built and gated exactly as the export stage does, and the variant is measured in its chosen
runtime (the student "in its best runtime"). What the image/tabular path measures, this path
measures the same way: test metrics with intervals, the paired bootstrap and McNemar test vs
the baseline (`accuracy_gate`), size, latency at batch 1 and 32 (every model timed interleaved
in one loop, so the shared machine's load hits all alike), the speed gate vs the parent, the
Pareto fronts and the choice under the budget. Steps that cannot apply to a transformer are
rejected with a RecipeError (pruning; static int8 and fp16 ONNX).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from danlu.compress.config import CompressConfig, DistillConfig, VariantConfig
from danlu.compress.gates import accuracy_gate, speed_gate
from danlu.compress.pareto import choose, pareto_front
from danlu.data.tokenize import TextEncoder
from danlu.errors import RecipeError
from danlu.export.text import (
    TorchRunner,
    latency_inputs,
    load_runner,
    package_text,
    predict_texts,
    text_model_card,
    time_runners,
)
from danlu.runs import Run, StageResult, atomic_write, read_json, write_json

__all__ = ["check_text_variants", "compress_text", "distill_text", "student_layers", "text_variants"]


def text_variants() -> list[VariantConfig]:
    """The variants when a text recipe's compress section lists none: a student keeping every
    other layer (3 of MiniLM's 6), int8 of the teacher, and int8 of the student."""
    from danlu.compress.config import QuantizeConfig

    student = DistillConfig(epochs=3, lr=1e-4, batch_size=32)
    return [VariantConfig(name="student", distill=student),
            VariantConfig(name="int8", quantize=QuantizeConfig(mode="dynamic")),
            VariantConfig(name="student-int8", from_="student",
                          quantize=QuantizeConfig(mode="dynamic"))]


def check_text_variants(variants: list[VariantConfig], teacher_layers: int) -> None:
    """Reject, before any work, the steps a transformer cannot take (the message names the fix)."""
    for i, v in enumerate(variants):
        where = f"compress.variants[{i}]"
        if v.prune is not None:
            raise RecipeError(f"{where}.prune", got=v.prune.model_dump(mode="json"),
                              expected="distill or quantize for a transformer (pruning is for the "
                                       "MLP and CNN)",
                              hint="a shallower student removes whole layers: distill: {student: "
                                   "{arch: transformer, layers: [0, 2, 4]}}")
        if v.quantize is not None and v.quantize.mode not in ("dynamic", "auto"):
            raise RecipeError(f"{where}.quantize.mode", got=v.quantize.mode,
                              expected="dynamic (ORT int8, per-channel) for a transformer",
                              hint="naive static int8 destroys MiniLM's accuracy (ENV.md); "
                                   "bf16 is the torch runtime's dtype at export")
        if v.distill is not None and v.distill.student is not None:
            s = v.distill.student
            if getattr(s, "arch", None) != "transformer":
                raise RecipeError(f"{where}.distill.student.arch", got=getattr(s, "arch", None),
                                  expected="transformer (a subset of the teacher's layers)")
            if s.layers is not None and max(s.layers) >= teacher_layers:
                raise RecipeError(f"{where}.distill.student.layers", got=s.layers,
                                  expected=f"indices below the teacher's {teacher_layers} layers")


def student_layers(cfg: DistillConfig, teacher_layers: int) -> list[int]:
    """The teacher's layers the student keeps: student.layers, else every other one."""
    if cfg.student is not None and cfg.student.layers is not None:
        return list(cfg.student.layers)
    return list(range(0, teacher_layers, 2))


def distill_text(teacher_folder: Path, out: Path, layers: list[int], cfg: DistillConfig,
                 train: tuple[list[str], np.ndarray], val: tuple[list[str], np.ndarray],
                 labels: list[str], max_length: int, seed: int) -> dict[str, Any]:
    """A student = the fine-tuned teacher keeping `layers` (initialised from them, head
    included), trained on the teacher's cached soft labels (Hinton et al. 2015) with the same
    loss and loop as image students; written as a HF folder to `out`. Returns the record."""
    from danlu.compress.distill import distillation_loss
    from danlu.compress.finetune import finetune
    from danlu.models.text import (
        TextClassifier,
        encode_texts,
        keep_layers,
        load_text_classifier,
        save_text_model,
    )

    torch.manual_seed(seed)
    encoder = TextEncoder.from_folder(teacher_folder, max_length)
    x_tr, x_val = encode_texts(encoder, train[0]), encode_texts(encoder, val[0])
    y_tr, y_val = torch.from_numpy(np.asarray(train[1])), torch.from_numpy(np.asarray(val[1]))
    teacher = TextClassifier(load_text_classifier(teacher_folder)).eval()
    # No augmentation for text: each row's input is fixed, so the teacher's logits are computed
    # once (eval mode) and indexed per batch instead of recomputed every step.
    with torch.inference_mode():
        cached = torch.cat([teacher(x_tr[i:i + 64]).float() for i in range(0, len(x_tr), 64)])
    teacher_n = teacher.hf.config.num_hidden_layers
    hf = load_text_classifier(teacher_folder)
    keep_layers(hf, layers)
    student = TextClassifier(hf)

    def loss(z_s: torch.Tensor, idx: torch.Tensor, y: torch.Tensor,
             x: object = None) -> torch.Tensor:
        return distillation_loss(z_s, cached[idx], y, cfg.temperature, cfg.alpha)

    res = finetune(student, (x_tr, y_tr), (x_val, y_val), epochs=cfg.epochs, lr=cfg.lr,
                   batch_size=cfg.batch_size, seed=seed, loss_fn=loss)
    save_text_model(student.hf, out, labels, teacher_folder)
    return {"student": {"arch": "transformer", "layers": layers, "of_teacher_layers": teacher_n},
            "init": "the fine-tuned teacher's layers (and its embeddings and head)",
            "temperature": cfg.temperature, "alpha": cfg.alpha, "teacher_logits_cached": True,
            "training": {"epochs": len(res.history), "best_epoch": res.best_epoch, "steps": res.steps,
                         "best_val_accuracy": res.best_val_accuracy, "history": res.history}}


@dataclass
class TextBuilt:
    """A text model made (or copied) by compress: its package folder and HF folder."""

    name: str
    dir: Path
    folder: Path  # the HF classifier behind the package (train/model or compress/<v>/model)
    meta: dict[str, Any] = field(default_factory=dict)
    quantized: str | None = None
    steps: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def runtime(self) -> str:
        return self.meta["runtime"]

    @property
    def entry(self) -> dict[str, Any]:
        return self.meta["runtimes"][self.runtime]


def _params(folder: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())


def _artifact_bytes(b: TextBuilt) -> int:
    return int(b.entry["size_bytes"])


def compress_text(run: Run, cfg: CompressConfig, variants: list[VariantConfig] | None = None
                  ) -> StageResult:
    """compress/<name>/ (a text package each) for the baseline and each variant, pareto.json."""
    from danlu.compress.stage import _row
    from danlu.data.stage import load_splits
    from danlu.evaluate.metrics import classification_metrics
    from danlu.evaluate.stats import bootstrap_ci

    if variants is None:  # the section's defaults are image/tabular steps: text has its own
        from danlu.compress.config import _default_variants

        variants = text_variants() if cfg.variants == _default_variants() else cfg.variants
    variants = list(variants)
    spec = read_json(run.path("train", "model.json"))
    teacher = run.path("train", spec.get("folder", "model"))
    teacher_n = int(read_json(teacher / "config.json")["num_hidden_layers"])
    check_text_variants(variants, teacher_n)
    splits = load_splits(run)
    labels, max_length = list(spec["labels"]), int(spec["max_length"])
    texts = {s: [str(t) for t in splits.x[s]] for s in ("train", "val", "test")}
    y = np.asarray(splits.y["test"])
    ecfg = run.recipe.export.model_copy(update={"threads": cfg.latency.threads})
    root = run.stage_dir("compress")
    torch.set_num_threads(cfg.latency.threads)

    def package(b: TextBuilt, only: list[str] | None = None, runtime: str | None = None) -> None:
        c = ecfg if runtime is None else ecfg.model_copy(update={"runtime": runtime})
        b.meta = package_text(b.folder, b.dir, texts["test"], y, labels, c, max_length, only=only,
                              name=run.recipe.name, version=f"{run.recipe.export.version}-{b.name}")

    base = TextBuilt("baseline", root / "baseline", teacher)
    shutil.rmtree(base.dir, ignore_errors=True)
    pkg = run.path("package")
    if (pkg / "danlu-model.json").is_file() and "runtimes" in read_json(pkg / "danlu-model.json"):
        shutil.copytree(pkg, base.dir)  # the run's package as exported: the same runtime choice
        base.meta = read_json(base.dir / "danlu-model.json")
    else:
        package(base)
    built = {"baseline": base}
    for v in variants:
        parent = built[v.from_]
        if parent.quantized and (v.distill or v.quantize):
            raise RecipeError(f"compress.variants.{v.name}.from", got=v.from_,
                              expected="a parent that is not quantized (quantize last)")
        b = TextBuilt(v.name, root / v.name, parent.folder, steps=list(parent.steps))
        shutil.rmtree(b.dir, ignore_errors=True)
        b.dir.mkdir(parents=True)
        if v.distill:
            layers = student_layers(v.distill, teacher_n)
            b.folder = b.dir / "model"
            b.record["distill"] = distill_text(
                parent.folder, b.folder, layers, v.distill,
                (texts["train"], splits.y["train"]), (texts["val"], splits.y["val"]), labels,
                max_length, run.recipe.seed)
            b.steps.append(f"distill to layers {layers} of {teacher_n} "
                           f"(T={v.distill.temperature}, alpha={v.distill.alpha})")
        if v.quantize:
            package(b, only=["onnxruntime-int8"], runtime="onnxruntime-int8")
            b.quantized = "dynamic"
            b.record["quantize"] = {**v.quantize.model_dump(mode="json"), "chosen_mode": "dynamic",
                                    "per_channel": True, "runtime": "onnxruntime-int8"}
            b.steps.append("dynamic int8 quantization (ORT, per-channel)")
        else:
            package(b)
        built[v.name] = b

    # Predictions of every model in its chosen runtime, then one interleaved timing loop.
    encoder = TextEncoder(teacher / "tokenizer.json", max_length)
    runners = {n: load_runner(b.dir, b.runtime, b.entry["dtype"], cfg.latency.threads)
               for n, b in built.items()}
    eager = TorchRunner(teacher, "float32")
    measured: dict[str, dict[str, Any]] = {}
    for n, b in built.items():
        probs, lab = predict_texts(runners[n], encoder, texts["test"])
        _, val_lab = predict_texts(runners[n], encoder, texts["val"])
        np.savez_compressed(b.dir / "predictions.npz", y=y, labels=lab, probabilities=probs)
        metrics = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y), labels)
        params = _params(b.folder)
        measured[n] = {"metrics": metrics, "accuracy": metrics["accuracy"], "labels": lab,
                       "accuracy_ci": bootstrap_ci(y, lab, n_classes=len(labels))["accuracy"],
                       "val_accuracy": float((val_lab == splits.y["val"]).mean()),
                       "params": params, "nonzero_params": params,
                       # no sparsity in text variants: the file's size is what it weighs zipped too
                       "size_bytes": _artifact_bytes(b), "deflated_bytes": _artifact_bytes(b)}
    timed = time_runners({**runners, "eager-fp32-teacher": eager},
                         latency_inputs(encoder, texts["test"]),
                         runs=cfg.latency.runs, warmup=cfg.latency.warmup)
    eager_ms = timed["eager-fp32-teacher"]
    for n in built:
        t = timed[n]
        measured[n]["latency"] = {"b1_ms": t["b1"], "b32_ms": t["b32"], "seq": t["seq"],
                                  "throughput_rows_s": 32 / t["b32"] * 1e3, "runs": cfg.latency.runs,
                                  "threads": cfg.latency.threads,
                                  "runtime": built[n].runtime, "dtype": built[n].entry["dtype"],
                                  "speedup_b32_vs_eager_fp32_teacher": eager_ms["b32"] / t["b32"]}

    base_labels = measured["baseline"]["labels"]
    gates: dict[str, dict[str, Any]] = {"baseline": {}}
    for v in variants:
        m, pm = measured[v.name], measured[v.from_]
        speed = speed_gate(pm["latency"]["b32_ms"], m["latency"]["b32_ms"], cfg.latency.speed_tolerance)
        if "reason" in speed:  # the shared gate words it for ORT; say which runtimes were timed
            speed["reason"] = speed["reason"].replace(
                "in ONNX Runtime", f"({built[v.name].runtime} vs its parent's {built[v.from_].runtime})")
        gates[v.name] = {"speed": speed,
                         "accuracy": accuracy_gate(y, m["labels"], pm["labels"], base_labels,
                                                   cfg.budget)}
    parents = {"baseline": "baseline", **{v.name: v.from_ for v in variants}}
    for n, b in built.items():
        _write(b, measured[n], gates[n], parents[n], splits.info.get("source", ""))
    rows = [{**_row(n, measured[n], gates[n], built[n], None if n == "baseline" else parents[n]),
             "runtime": built[n].runtime,
             "dtype": built[n].entry["dtype"],
             "speedup_b32_vs_eager_fp32_teacher": measured[n]["latency"][
                 "speedup_b32_vs_eager_fp32_teacher"]} for n in built]
    passing = [r for r in rows if r["passed"]]
    chosen, why = choose(rows, cfg.budget)
    report = {"baseline": "baseline", "kind": "text", "budget": cfg.budget.model_dump(mode="json"),
              "latency": cfg.latency.model_dump(mode="json"),
              "eager_fp32_teacher_ms": {"b1": eager_ms["b1"], "b32": eager_ms["b32"]},
              "variants": rows, "front": pareto_front(passing),
              "front_accuracy_latency": pareto_front(passing, ("accuracy", "latency")),
              "front_accuracy_size": pareto_front(passing, ("accuracy", "size")),
              "chosen": chosen, "why": why, "promoted": False}
    if cfg.promote:
        from danlu.compress.package import promote

        promote(run, None if chosen == "baseline" else built[chosen].dir)
        report["promoted"] = chosen != "baseline"
    write_json(root / "pareto.json", report)
    return StageResult(paths={"pareto": "compress/pareto.json"},
                       metrics={"variants": len(rows) - 1, "passed": len(passing) - 1,
                                "failed": [r["name"] for r in rows if not r["passed"]],
                                "chosen": chosen, "promoted": report["promoted"]})


def _write(b: TextBuilt, m: dict[str, Any], gates: dict[str, Any], parent: str, source: str) -> None:
    """compression.json, and the variant's danlu-model.json/README.md with its measurements."""
    record = {"variant": b.name, "from": parent, "steps": b.steps, **b.record, "gates": gates,
              "params": m["params"], "nonzero_params": m["nonzero_params"],
              "size_bytes": m["size_bytes"], "deflated_bytes": m["deflated_bytes"],
              "latency": m["latency"], "quantized": b.quantized, "runtime": b.runtime,
              "predictions": "predictions.npz"}
    write_json(b.dir / "compression.json", record)
    passed = all(g["passed"] for g in gates.values())
    meta = {**b.meta, "metrics": {"test": m["metrics"], "gate": {"passed": passed}},
            "compression": record}
    from danlu.export.package import write_package_meta

    meta.pop("format", None)
    write_package_meta(b.dir, meta)
    atomic_write(b.dir / "README.md", text_model_card(meta, source)
                 + f"\n## Compression\nVariant `{b.name}` from `{parent}`: "
                   f"{', '.join(b.steps) or 'the uncompressed model'}. Gates: "
                 + "; ".join(f"{k} {'passed' if g['passed'] else 'FAILED: ' + g.get('reason', '')}"
                             for k, g in gates.items()) + "\n")
