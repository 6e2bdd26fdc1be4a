"""Operational routes (metrics, playground) and the error handlers every route shares."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from danlu.serve.metrics import CONTENT_TYPE_LATEST
from danlu.serve.playground import playground_html
from danlu.serve.protocols import ProtocolError
from danlu.serve.routes.common import Model, error, first_line

__all__ = ["add_error_handlers", "add_operational_routes"]

log = logging.getLogger("danlu.serve")


def add_operational_routes(app: FastAPI, models: dict[str, Model]) -> None:
    """Prometheus metrics and the playground page."""

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: danlu_* request, latency, queue and batch metrics."""
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def playground() -> HTMLResponse:
        """The playground: draw a digit or type numbers, see the model's answer."""
        return HTMLResponse(playground_html([m.package for m in models.values()]))


def add_error_handlers(app: FastAPI) -> None:
    """Every failure answers {"error": message}: tritonclient reads that key, not "detail"."""

    @app.exception_handler(ProtocolError)
    async def protocolerror(request: Request, e: ProtocolError) -> JSONResponse:
        headers = {"Allow": "POST"} if e.status == 405 else None
        if e.status == 429:
            headers = {"Retry-After": "1"}
        return error(e.status, e.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def httperror(request: Request, e: StarletteHTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        message = {404: f"no endpoint {where}; see /docs for the endpoints",
                   405: f"method not allowed: {where}"}.get(e.status_code, str(e.detail))
        return error(e.status_code, message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def validationerror(request: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI says 422 {"detail": [...]}; clients of these protocols expect 400 {"error"}.
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg')}"
                 for err in e.errors()]
        return error(400, "bad request: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def internalerror(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {type(e).__name__}: {first_line(e)}")
