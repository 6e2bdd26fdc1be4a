"""Loading trained weights back: model.json (architecture) + model.safetensors, no pickle."""

from __future__ import annotations

import torch
from torch import nn

from danlu.models import InputSpec, build_model
from danlu.models.config import CNNConfig, MLPConfig
from danlu.models.packaged import Packaged
from danlu.runs import Run, read_json

__all__ = ["load_model", "load_packaged"]


def load_model(run: Run) -> nn.Module:
    """The trained network of a run (eval mode, CPU), rebuilt from JSON + safetensors."""
    from safetensors.torch import load_file

    spec = read_json(run.path("train", "model.json"))
    cfg = (MLPConfig if spec["model"]["arch"] == "mlp" else CNNConfig).model_validate(spec["model"])
    shape = spec["image_shape"]
    net = build_model(cfg, InputSpec(spec["features"], tuple(shape) if shape else None),
                      spec["num_classes"])
    net.load_state_dict(load_file(str(run.path("train", "model.safetensors"))))
    return net.eval()


def load_packaged(run: Run) -> Packaged:
    """The trained network with the run's normalizer in front: raw rows in, (probs, label) out."""
    norm = read_json(run.path("data", "normalizer.json"))
    return Packaged(load_model(run), torch.tensor(norm["shift"]), torch.tensor(norm["scale"])).eval()
