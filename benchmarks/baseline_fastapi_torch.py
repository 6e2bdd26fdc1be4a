"""The baseline a user writes today: FastAPI + pydantic, PyTorch eager once per request.

`python benchmarks/baseline_fastapi_torch.py MODEL_DIR PORT`, MODEL_DIR a danlu model folder
(model.json + weights: a run's train/model/, or a package's torch/), loaded as the deployable
`Packaged` module (the features' in-graph steps, e.g. normalization, + network + head). It
answers the same KServe-v2-shaped JSON as danlu, so one load generator body fits both; every
value passes through pydantic, as such endpoints usually do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from danlu.models.load import load_packaged


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferRequest(BaseModel):
    inputs: list[Tensor]


def make_app(folder: Path) -> FastAPI:
    model = load_packaged(folder)  # eval mode, on the CPU
    app = FastAPI()

    @app.post("/v2/models/{name}/infer")
    def infer(name: str, req: InferRequest) -> dict:  # sync def: FastAPI runs it in a thread
        given = {t.name: torch.tensor(t.data, dtype=torch.float32).reshape(t.shape)
                 for t in req.inputs}
        with torch.no_grad():
            probs, label = model(*(given[n] for n in model.input_names))
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
