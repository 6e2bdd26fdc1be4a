"""TF-Serving-style routes: /v1/models/{name}:predict and the model status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from danlu.serve.openapi import V1_PREDICT
from danlu.serve.protocols import ProtocolError, TFServingV1
from danlu.serve.routes.common import Model, lookup
from danlu.serve.routes.common import infer as _infer

__all__ = ["add_tfserving_routes"]

TFSERVING = TFServingV1()


def add_tfserving_routes(app: FastAPI, models: dict[str, Model]) -> None:
    """TF-Serving-style routes: /v1/models/{name}:predict and the model status."""
    # `{target}` is "name:predict": a path param stops at '/' but not at ':', so the verb is
    # split off in the handler, where an unknown verb or a missing one gets a clear answer.

    @app.post("/v1/models/{target}", openapi_extra=V1_PREDICT)
    async def predict(target: str, request: Request) -> Response:
        """TF-Serving predict: POST /v1/models/{name}:predict with instances or inputs."""
        name = _predict_target(target, request)
        return await _infer(TFSERVING, lookup(models, name), request)

    @app.post("/v1/models/{name}/versions/{target}", openapi_extra=V1_PREDICT)
    async def version_predict(name: str, target: str, request: Request) -> Response:
        """TF-Serving predict on one version: /v1/models/{name}/versions/{v}:predict."""
        version = _predict_target(target, request)
        return await _infer(TFSERVING, lookup(models, name, version), request)

    @app.get("/v1/models/{target}")
    async def status(target: str) -> dict[str, Any]:
        """TF-Serving model status."""
        return _tf_status(lookup(models, _status_target(target)))

    @app.get("/v1/models/{name}/versions/{target}")
    async def version_status(name: str, target: str) -> dict[str, Any]:
        """TF-Serving status of one model version."""
        return _tf_status(lookup(models, name, _status_target(target)))


def _predict_target(target: str, request: Request) -> str:
    """"digits:predict" -> "digits"; any other verb, or none, is refused with the fix."""
    name, sep, verb = target.rpartition(":")
    if sep and verb == "predict":
        return name
    if sep:  # (TF-Serving's :classify/:regress included) no such endpoint here: a 404
        raise ProtocolError(404, f"':{verb}' is not supported; use ':predict'")
    raise ProtocolError(404, f"POST {request.url.path}: add the verb, e.g. "
                             f"POST {request.url.path}:predict")


def _status_target(target: str) -> str:
    """GET /v1/models/{name}: a ':verb' here means the client meant POST."""
    if ":" in target:
        raise ProtocolError(405, f"{target.rpartition(':')[2]!r} takes POST, not GET")
    return target


def _tf_status(model: Model) -> dict[str, Any]:
    """TF-Serving's model status body for GET /v1/models/{name}."""
    return {"model_version_status": [{"version": model.package.version, "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}
