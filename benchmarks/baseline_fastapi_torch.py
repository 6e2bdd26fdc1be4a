"""The baseline a user writes today: FastAPI + pydantic, PyTorch eager once per request.

`python benchmarks/baseline_fastapi_torch.py MODEL_DIR PORT`, MODEL_DIR holding model.json
(architecture, as train/model.json) and model.safetensors (the Packaged module's state dict:
normalization + network). It answers the same KServe-v2-shaped JSON as danlu, so one load
generator body fits both; every value passes through pydantic, as such endpoints usually do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from safetensors.torch import load_file

from danlu.models import InputSpec, build_model
from danlu.models.config import CNNConfig, MLPConfig
from danlu.models.packaged import Packaged


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    inputs: list[Tensor]


def load(folder: Path) -> torch.nn.Module:
    """Rebuild the Packaged module from JSON + safetensors."""
    spec = json.loads((folder / "model.json").read_text())
    cfg = (MLPConfig if spec["model"]["arch"] == "mlp" else CNNConfig).model_validate(spec["model"])
    shape = spec["image_shape"]
    net = build_model(cfg, InputSpec(spec["features"], tuple(shape) if shape else None),
                      spec["num_classes"])
    module = Packaged(net, torch.zeros(spec["features"]), torch.ones(spec["features"]))
    module.load_state_dict(load_file(str(folder / "model.safetensors")))
    return module.eval()


def make_app(folder: Path) -> FastAPI:
    model = load(folder)
    app = FastAPI()

    @app.post("/v2/models/{name}/infer")
    def infer(name: str, req: InferRequest) -> dict:  # sync def: FastAPI runs it in a thread
        x = torch.tensor(req.inputs[0].data, dtype=torch.float32).reshape(req.inputs[0].shape)
        with torch.no_grad():
            probs, label = model(x)
        return {"model_name": name, "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": list(probs.shape),
             "data": probs.flatten().tolist()},
            {"name": "label", "datatype": "INT64", "shape": list(label.shape),
             "data": label.tolist()}]}

    @app.get("/v2/health/ready")
    def ready() -> dict:
        return {"ready": True}

    return app


if __name__ == "__main__":
    uvicorn.run(make_app(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning")
