"""Open Inference Protocol v2 (KServe, Triton) routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from danlu.serve.openapi import V2_INFER
from danlu.serve.protocols import KServeV2
from danlu.serve.protocols.kserve_v2 import model_metadata
from danlu.serve.routes.common import Model, __version__, lookup
from danlu.serve.routes.common import infer as _infer

__all__ = ["EXTENSIONS", "add_kserve_routes"]

KSERVE = KServeV2()
# Open Inference Protocol extensions this server implements.
EXTENSIONS: list[str] = ["binary_tensor_data"]


def add_kserve_routes(app: FastAPI, models: dict[str, Model]) -> None:
    """The Open Inference Protocol v2 REST endpoints."""

    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        """Liveness: the process answers."""
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        """Readiness: 200 when every model is loaded, else 503."""
        ok = bool(app.state.ready)
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        """Server name, version and supported protocol extensions."""
        return {"name": "danlu", "version": __version__, "extensions": EXTENSIONS}

    @app.get("/v2/models/{name}")
    async def metadata(name: str) -> dict[str, Any]:
        """Model metadata: versions, platform, input and output tensors."""
        return model_metadata(lookup(models, name).package)

    @app.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(name: str, version: str) -> dict[str, Any]:
        """Model metadata for one version."""
        return model_metadata(lookup(models, name, version).package)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> dict[str, Any]:
        """Whether this model can take requests."""
        return {"name": lookup(models, name).package.name, "ready": True}

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: str) -> dict[str, Any]:
        """Whether this model version can take requests."""
        return {"name": lookup(models, name, version).package.name, "ready": True}

    @app.post("/v2/models/{name}/infer", openapi_extra=V2_INFER)
    async def infer(name: str, request: Request) -> Response:
        """Inference: JSON tensors, or binary tensor data after Inference-Header-Content-Length
        bytes of JSON. No Content-Type needed."""
        return await _infer(KSERVE, lookup(models, name), request)

    @app.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=V2_INFER)
    async def versioninfer(name: str, version: str, request: Request) -> Response:
        """Inference on one model version."""
        return await _infer(KSERVE, lookup(models, name, version), request)
