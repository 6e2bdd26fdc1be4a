"""Quantization in ONNX Runtime and the distillation loss, on real digits."""

from __future__ import annotations

import math

import numpy as np
import torch

from danlu.compress.config import LatencyConfig, QuantizeConfig
from danlu.compress.distill import distillation_loss
from danlu.compress.gates import speed_gate
from danlu.compress.measure import paired_latency, predict, session
from danlu.compress.quantize import quantize_onnx


def _baseline_onnx(small_run):
    return small_run.run_dir / "package" / "model.onnx"


def test_static_int8_with_calibration_runs_in_ort_and_keeps_labels(small_run, ctx, tmp_path):
    src = _baseline_onnx(small_run)
    for method in ("minmax", "percentile"):
        dst = quantize_onnx(src, tmp_path / f"int8-{method}.onnx", "static",
                            QuantizeConfig(mode="static", calibration=method), "pixels",
                            ctx.calibration(256))
        x = ctx.splits.x["test"]
        _, ref = predict(session(src, 2), x)
        probs, labels = predict(session(dst, 2), x)
        agreement = float((labels == ref).mean())
        assert agreement > 0.95, (method, agreement)
        assert np.allclose(probs.sum(1), 1, atol=1e-3)
        assert dst.stat().st_size < src.stat().st_size / 2.5  # int8 weights: ~4x smaller


def test_dynamic_int8_conv_speed_gate_follows_the_measurement(small_run, ctx, tmp_path):
    src = _baseline_onnx(small_run)
    dst = quantize_onnx(src, tmp_path / "dyn.onnx", "dynamic", QuantizeConfig(mode="dynamic"),
                        "pixels")
    cfg = LatencyConfig(runs=60)
    parent_ms, child_ms = paired_latency(src, dst, ctx.splits.x["test"], cfg)
    gate = speed_gate(parent_ms, child_ms, cfg.speed_tolerance)
    assert gate["passed"] == (child_ms <= parent_ms * (1 + cfg.speed_tolerance))
    assert gate["b32_ms"] == child_ms and gate["parent_b32_ms"] == parent_ms
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


def test_augmented_distillation_labels_each_augmented_batch_with_the_teacher(small_run, ctx):
    from danlu.compress.config import DistillConfig
    from danlu.compress.distill import distill, student_config
    from danlu.compress.variants import _augmenter
    from danlu.runs import Run
    from danlu.train.checkpoint import load_model

    teacher = load_model(Run.open(small_run.run_dir))
    seen: list[torch.Tensor] = []
    teacher.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    cfg = DistillConfig.model_validate({"width": 0.25, "epochs": 1, "batch_size": 256,
                                        "augment": [{"rotate": {"degrees": 15, "p": 1.0}}]})
    s_cfg = student_config(cfg, Run.open(small_run.run_dir).recipe.model)
    x = ctx.train[0]
    _, res = distill(teacher, s_cfg, ctx.spec, ctx.num_classes, cfg, ctx.train, ctx.val, 0,
                     augment=_augmenter(ctx, cfg.augment))
    batches = -(-len(x) // 256)
    assert len(seen) == batches and res.steps == batches  # teacher called per batch, not cached
    rows = {tuple(r.tolist()) for r in x}
    assert all(tuple(seen[0][i].tolist()) not in rows for i in range(10))  # rotated inputs
    seen.clear()
    _, res0 = distill(teacher, s_cfg, ctx.spec, ctx.num_classes, cfg, ctx.train, ctx.val, 0,
                      use_teacher=False, augment=_augmenter(ctx, cfg.augment))
    assert seen == [] and res0.steps == res.steps  # the comparison student never asks the teacher
