"""train.precision: bf16 autocast trains on CPU; fp16 is refused off-GPU with the fix."""

from __future__ import annotations

import pytest
import torch

from danlu.errors import RecipeError
from danlu.train.loop import fit
from danlu.train.precision import Precision
from tests.train.helpers import dataset, mlp, train_cfg


def test_bf16_autocast_runs_the_matmuls_in_bf16_on_cpu():
    p = Precision("bf16", torch.device("cpu"))
    layer = torch.nn.Linear(4, 3)
    with p.autocast():
        out = layer(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    with Precision("fp32", torch.device("cpu")).autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.float32


def test_bf16_training_lowers_the_loss_and_keeps_fp32_weights():
    x, y, head = dataset()
    cfg = train_cfg(epochs=15, batch_size=16, precision="bf16", optimizer={"name": "adam", "lr": 0.02})
    model = mlp(4, 3)
    result = fit(model, (x, y), (x, y), head, cfg, seed=0)
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_fp16_on_cpu_is_a_recipe_error_naming_the_fix():
    with pytest.raises(RecipeError, match=r"train.precision: got 'fp16'.*use train.precision=bf16"):
        Precision("fp16", torch.device("cpu"))
    x, y, head = dataset()
    with pytest.raises(RecipeError, match="train.precision"):
        fit(mlp(4, 3), (x, y), (x, y), head, train_cfg(precision="fp16"), seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_fp16_with_grad_scaler_trains_on_gpu():
    x, y, head = dataset()
    x, y = x.cuda(), y.cuda()
    cfg = train_cfg(epochs=15, batch_size=16, precision="fp16", clip_norm=1.0,
                    optimizer={"name": "adam", "lr": 0.02})
    result = fit(mlp(4, 3).cuda(), (x, y), (x, y), head, cfg, seed=0)
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
