"""Quantization in ONNX Runtime, measurement as served, and distillation, on real digits."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from danlu.compress.config import DistillConfig, QuantizeConfig
from danlu.compress.distill import distill, distillation_loss
from danlu.compress.gates import speed_gate
from danlu.compress.quantize import quantize_onnx


def _session_labels(path, ctx) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(sess.run(["probabilities", "label"], ctx.feeds(ctx.values("test"))))


def test_static_int8_calibrated_on_encoded_rows_runs_in_ort_and_keeps_labels(small_run, ctx,
                                                                            tmp_path):
    src = small_run.run_dir / "package" / "model.onnx"
    calib = ctx.calibration(256)
    assert len(calib) == 8 and set(calib[0]) == {"pixels"}  # batches of the graph's inputs
    _, ref = _session_labels(src, ctx)
    for method in ("minmax", "percentile"):
        dst = quantize_onnx(src, tmp_path / f"int8-{method}.onnx", "static",
                            QuantizeConfig(mode="static", calibration=method), calib)
        probs, labels = _session_labels(dst, ctx)
        agreement = float((labels == ref).mean())
        assert agreement > 0.95, (method, agreement)
        assert np.allclose(probs.sum(1), 1, atol=1e-3)
        assert dst.stat().st_size < src.stat().st_size / 2.5  # int8 weights: ~4x smaller


def test_every_package_is_measured_as_served_and_timed_in_one_loop(small_run, ctx, teacher,
                                                                   tmp_path):
    """The run's package and its dynamic int8 graph (a package with the same features), loaded
    through danlu.serve.runtimes: outputs equal a plain ORT session's, latency from one loop."""
    from danlu.compress.measure import measure
    from danlu.compress.package import quantized_package
    from danlu.compress.variants import Variant
    from danlu.runs import read_json

    src = small_run.run_dir / "package" / "model.onnx"
    q = quantize_onnx(src, tmp_path / "dyn.onnx", "dynamic", QuantizeConfig(mode="dynamic"))
    meta = quantized_package(ctx, tmp_path / "dyn", q, "dynamic", "dyn")
    assert meta["runtimes"] == {"onnxruntime": {"artifact": "onnx", "dtype": "int8",
                                                "passed": True, "reasons": [], "loaded": {},
                                                "size_bytes": q.stat().st_size}}
    base = Variant("baseline", small_run.run_dir / "package", teacher.family, teacher,
                   meta=read_json(small_run.run_dir / "package" / "danlu-model.json"))
    dyn = dataclasses.replace(base, name="dyn", dir=tmp_path / "dyn", quantized="dynamic", meta=meta)
    m = measure(ctx, {"baseline": base, "dyn": dyn})
    for name, path in (("baseline", src), ("dyn", q)):
        probs, labels = _session_labels(path, ctx)
        assert np.array_equal(m[name].labels, labels)
        np.testing.assert_allclose(m[name].probabilities, probs, atol=1e-6)
        assert m[name].accuracy == pytest.approx(float((labels == ctx.y("test")).mean()))
        assert m[name].size_bytes == path.stat().st_size
        assert m[name].latency["b1_ms"] > 0 and m[name].latency["runtime"] == "onnxruntime"
    assert m["dyn"].latency["dtype"] == "int8" and m["baseline"].params == m["dyn"].params
    parent_ms, child_ms = m["baseline"].latency["b32_ms"], m["dyn"].latency["b32_ms"]
    gate = speed_gate(parent_ms, child_ms, 0.1, ("onnxruntime", "onnxruntime"))
    assert gate["passed"] == (child_ms <= parent_ms * 1.1)
    if not gate["passed"]:
        assert f"{child_ms:.3f} ms vs {parent_ms:.3f} ms" in gate["reason"]


def test_distillation_loss_matches_a_hand_computation():
    z_s = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    z_t = torch.tensor([[2.0, 1.0, 0.0], [1.0, 0.0, 2.0]])
    y = torch.tensor([1, 2])
    T, a = 4.0, 0.7

    def softmax(v):
        e = [math.exp(u) for u in v]
        return [u / sum(e) for u in e]

    kl = ce = 0.0
    for i in range(2):
        p_t = softmax([v / T for v in z_t[i].tolist()])
        p_s = softmax([v / T for v in z_s[i].tolist()])
        kl += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s, strict=True))
        ce += -math.log(softmax(z_s[i].tolist())[int(y[i])])
    expected = a * T * T * kl / 2 + (1 - a) * ce / 2
    got = float(distillation_loss(z_s, z_t, y, T, a))
    assert abs(got - expected) < 1e-6
    # alpha = 0 is plain cross-entropy: the comparison student's loss.
    assert abs(float(distillation_loss(z_s, z_t, y, T, 0.0)) - ce / 2) < 1e-6


def test_the_cnn_family_student_is_the_teacher_scaled_by_width(teacher):
    cfg = DistillConfig(width=0.25)
    s_cfg, net = teacher.family.student(teacher, cfg, "compress.variants[0].distill")
    assert s_cfg.channels == [8, 16] and s_cfg.hidden == 32  # digits recipe: [32, 64], 128
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in teacher.net.parameters()) / 10
    named = DistillConfig(student={"arch": "cnn", "channels": [4], "hidden": 8})
    assert teacher.family.student(teacher, named, "x")[0].channels == [4]


def test_augmented_distillation_labels_each_augmented_batch_with_the_teacher(teacher, ctx):
    from danlu.data.augment import build_augmenter

    net = teacher.net
    seen: list[torch.Tensor] = []
    hook = net.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    cfg = DistillConfig.model_validate({"width": 0.25, "epochs": 1, "batch_size": 256,
                                        "augment": [{"rotate": {"degrees": 15, "p": 1.0}}]})
    try:
        def student():
            torch.manual_seed(0)
            return teacher.family.student(teacher, cfg, "x")[1]

        x = ctx.xy("train")[0]
        res = distill(net, student(), cfg, ctx.xy("train"), ctx.xy("val"), ctx.head, 0,
                      augment=build_augmenter(cfg.augment, ctx.features, ctx.head, 0))
        batches = -(-len(x) // 256)
        assert len(seen) == batches and res.steps == batches  # teacher called per batch, not cached
        rows = {tuple(r.tolist()) for r in x}
        assert all(tuple(seen[0][i].tolist()) not in rows for i in range(10))  # rotated inputs
        seen.clear()
        res0 = distill(net, student(), cfg, ctx.xy("train"), ctx.xy("val"), ctx.head, 0,
                       use_teacher=False,
                       augment=build_augmenter(cfg.augment, ctx.features, ctx.head, 0))
        assert seen == [] and res0.steps == res.steps  # the comparison student never asks the teacher
    finally:
        hook.remove()


def test_distillation_anneals_the_learning_rate_to_zero_unless_told_constant(teacher, ctx):
    """distill.schedule: cosine (the default) ends each student's training at lr ~0, half-way at
    lr/2; constant keeps lr. The student trained alone follows the same schedule."""
    train = tuple(t[:512] for t in ctx.xy("train"))
    lrs = {}
    for schedule in ("cosine", "constant"):
        cfg = DistillConfig.model_validate({"width": 0.25, "epochs": 4, "batch_size": 128,
                                            "lr": 1e-3, "schedule": schedule})
        for use_teacher in (True, False):
            torch.manual_seed(0)
            student = teacher.family.student(teacher, cfg, "x")[1]
            res = distill(teacher.net, student, cfg, train, ctx.xy("val"), ctx.head, 0,
                          use_teacher=use_teacher)
            lrs[schedule, use_teacher] = [h["lr"] for h in res.history]
    # 4 steps an epoch, 16 in all: the lr of each epoch's last step, lr/2 (1 + cos(pi s/16))
    want = [1e-3 * 0.5 * (1 + math.cos(math.pi * s / 16)) for s in (3, 7, 11, 15)]
    assert lrs["cosine", True] == pytest.approx(want) == lrs["cosine", False]
    assert lrs["cosine", True][-1] < 1e-5 and lrs["constant", True] == [1e-3] * 4
    assert DistillConfig().schedule == "cosine"
