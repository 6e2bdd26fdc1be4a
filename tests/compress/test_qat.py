"""Quantization-aware training on real digits data: an int8 QDQ ONNX that ORT runs, within budget."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from danlu.compress.config import QATConfig
from danlu.compress.quantize.qat import FakeQuantized, qat_finetune
from tests.compress.conftest import FAST, copy_run


def test_fake_quantized_layer_matches_int8_arithmetic():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 3)
    fq = FakeQuantized(lin).eval()
    x = torch.randn(5, 6)
    y = fq(x)  # first call observes the range
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    s = (hi - lo) / 255
    z = round(-128 - lo / s)
    xq = (torch.clamp(torch.round(x / s) + z, -128, 127) - z) * s
    ws = lin.weight.abs().amax(dim=1, keepdim=True) / 127
    wq = torch.clamp(torch.round(lin.weight / ws), -127, 127) * ws
    torch.testing.assert_close(y, xq @ wq.T + lin.bias, atol=1e-5, rtol=1e-5)
    assert len(torch.unique(torch.round(wq / ws))) <= 255  # on the int8 grid


def test_qat_keeps_the_model_config_and_folds_batchnorm_exactly(teacher, ctx):
    before = {k: v.shape for k, v in teacher.net.state_dict().items()}
    trained = copy.deepcopy(teacher.net)
    res = qat_finetune(trained, QATConfig(epochs=1), ctx.xy("train"), ctx.xy("val"), ctx.head,
                       seed=0)
    assert res.best_epoch == 1 and {k: v.shape for k, v in trained.state_dict().items()} == before
    bns = [m for m in trained.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training and float(m.weight.detach().min()) == 1.0 for m in bns)
    assert not any(isinstance(m, FakeQuantized) for m in trained.modules())


@pytest.mark.slow
def test_qat_variant_is_a_valid_int8_onnx_within_budget(small_run, tmp_path):
    import onnx

    from danlu.compress.config import CompressConfig
    from danlu.compress.stage import compress
    from danlu.runs import Run, read_json

    run_dir = copy_run(small_run.run_dir, tmp_path / "run")
    cfg = CompressConfig.model_validate({**FAST, "variants": [
        {"name": "qat8", "quantize": {"mode": "qat", "qat": {"epochs": 2}}}]})
    compress(Run.open(run_dir), cfg)
    rows = {r["name"]: r for r in read_json(run_dir / "compress" / "pareto.json")["variants"]}
    q = rows["qat8"]
    model = onnx.load(str(run_dir / "compress" / "qat8" / "model.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"} <= ops
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and
            np.prod(i.dims) > 100]
    assert len(int8) >= 4  # every Conv and Gemm weight stored as int8
    assert q["quantized"] == "static" and "quantization-aware training" in q["steps"][0]
    drop = rows["baseline"]["accuracy"] - q["accuracy"]
    assert drop <= 0.01, q  # the accuracy gate's budget, measured in ONNX Runtime
    assert q["vs_parent"]["accuracy"]["label_agreement_with_parent"] >= 0.95
    assert q["deflated_bytes"] < rows["baseline"]["deflated_bytes"] / 2.5
    # The fine-tuned fp32 weights are a model folder of the same config; the package serves
    # the int8 graph, with the baseline's features and head.
    assert read_json(run_dir / "compress" / "qat8" / "model" / "model.json")["config"] == \
        read_json(run_dir / "train" / "model" / "model.json")["config"]
    meta = read_json(run_dir / "compress" / "qat8" / "danlu-model.json")
    assert meta["runtime"] == "onnxruntime" and meta["runtimes"]["onnxruntime"]["dtype"] == "int8"
    assert meta["features"] == read_json(run_dir / "package" / "danlu-model.json")["features"]
