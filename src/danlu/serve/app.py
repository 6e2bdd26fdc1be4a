"""The HTTP server: FastAPI routes for KServe v2 and TF-Serving /v1 over loaded model packages."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from danlu.errors import DanluError
from danlu.serve.config import ServeConfig
from danlu.serve.package import Package, load_package
from danlu.serve.protocols import KServeV2, Protocol, ProtocolError, TFServingV1, parse_json
from danlu.serve.protocols.kserve_v2 import model_metadata
from danlu.serve.runtimes import Runtime, RuntimeInputError, load_runtime

try:  # the package version when the rest of danlu is importable, else this server's own
    from danlu import __version__
except ImportError:
    __version__ = "0.1.0"

__all__ = ["create_app", "serve"]

log = logging.getLogger("danlu.serve")
KSERVE, TFSERVING = KServeV2(), TFServingV1()
# Open Inference Protocol extensions this server implements; binary_tensor_data comes later.
EXTENSIONS: list[str] = []


@dataclass
class Model:
    """A served model: its package (the contract) and the runtime that executes it."""

    package: Package
    runtime: Runtime


def create_app(packages: list[Package] | list[Path], cfg: ServeConfig | None = None) -> FastAPI:
    """A FastAPI app serving `packages` (Package objects or package/run folders), loaded now."""
    models = load_models(packages, cfg or ServeConfig())
    app = FastAPI(title="danlu", version=__version__,
                  description="KServe v2 (Open Inference Protocol) and TF-Serving-style /v1 "
                              f"predict for: {', '.join(models)}")
    app.state.models, app.state.ready = models, True
    _add_error_handlers(app)
    _add_kserve_routes(app, models)
    _add_tfserving_routes(app, models)
    return app


def serve(paths: list[Path], cfg: ServeConfig | None = None) -> None:
    """Load the packages at `paths`, print the URL once, and serve until interrupted."""
    import uvicorn  # only the process that listens needs it

    cfg = cfg or ServeConfig()
    app = create_app(list(paths), cfg)
    sock = _bind(cfg.host, cfg.port)  # bound before printing: the URL printed is live
    url = _url(cfg.host, sock.getsockname()[1])
    print(f"danlu: serving {', '.join(app.state.models)} at {url}  (Ctrl+C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=5))
    server.run(sockets=[sock])


def load_models(packages: list[Package] | list[Path], cfg: ServeConfig) -> dict[str, Model]:
    """Load each package and its runtime; names must be unique (they are URL segments)."""
    if not packages:
        raise DanluError("nothing to serve: give at least one package or run folder")
    models: dict[str, Model] = {}
    for item in packages:
        package = item if isinstance(item, Package) else load_package(item)
        if package.name in models:
            first = models[package.name].package.dir
            raise DanluError(f"two packages are named {package.name!r} ({first} and "
                             f"{package.dir}); model names must be unique")
        models[package.name] = Model(package, load_runtime(package, cfg))
    return models


def _add_kserve_routes(app: FastAPI, models: dict[str, Model]) -> None:
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
        return model_metadata(_lookup(models, name).package)

    @app.get("/v2/models/{name}/versions/{version}")
    async def version_metadata(name: str, version: str) -> dict[str, Any]:
        """Model metadata for one version."""
        return model_metadata(_lookup(models, name, version).package)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> dict[str, Any]:
        """Whether this model can take requests."""
        return {"name": _lookup(models, name).package.name, "ready": True}

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def version_ready(name: str, version: str) -> dict[str, Any]:
        """Whether this model version can take requests."""
        return {"name": _lookup(models, name, version).package.name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> JSONResponse:
        """Inference (Open Inference Protocol v2 JSON body; no Content-Type needed)."""
        return await _infer(KSERVE, _lookup(models, name), request)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def version_infer(name: str, version: str, request: Request) -> JSONResponse:
        """Inference on one model version."""
        return await _infer(KSERVE, _lookup(models, name, version), request)


def _add_tfserving_routes(app: FastAPI, models: dict[str, Model]) -> None:
    """TF-Serving-style routes: /v1/models/{name}:predict and the model status."""
    # `{target}` is "name:predict": a path param stops at '/' but not at ':', so the verb is
    # split off in the handler, where an unknown verb or a missing one gets a clear answer.

    @app.post("/v1/models/{target}")
    async def predict(target: str, request: Request) -> JSONResponse:
        """TF-Serving predict: POST /v1/models/{name}:predict with instances or inputs."""
        name = _predict_target(target, request)
        return await _infer(TFSERVING, _lookup(models, name), request)

    @app.post("/v1/models/{name}/versions/{target}")
    async def version_predict(name: str, target: str, request: Request) -> JSONResponse:
        """TF-Serving predict on one version: /v1/models/{name}/versions/{v}:predict."""
        version = _predict_target(target, request)
        return await _infer(TFSERVING, _lookup(models, name, version), request)

    @app.get("/v1/models/{target}")
    async def status(target: str) -> dict[str, Any]:
        """TF-Serving model status."""
        return _tf_status(_lookup(models, _status_target(target)))

    @app.get("/v1/models/{name}/versions/{target}")
    async def version_status(name: str, target: str) -> dict[str, Any]:
        """TF-Serving status of one model version."""
        return _tf_status(_lookup(models, name, _status_target(target)))


async def _infer(protocol: Protocol, model: Model, request: Request) -> JSONResponse:
    """Parse the raw body (no Content-Type needed), decode, run off the event loop, encode."""
    if "inference-header-content-length" in request.headers:
        raise ProtocolError(501, "binary tensor data is not supported yet; send JSON tensors "
                                 "(tritonclient.http: binary_data=False)")
    body = parse_json(await request.body())
    req = protocol.decode(body, model.package)
    try:
        # ORT releases the GIL: a worker thread keeps the loop answering other requests.
        outputs = await run_in_threadpool(model.runtime.run, req.inputs, req.outputs)
    except RuntimeInputError as e:
        return _error(400, str(e))
    except Exception as e:  # the model's fault, not the client's: 500, and keep serving
        log.exception("model %r failed on a request", model.package.name)
        return _error(500, f"model {model.package.name!r} failed: {_first_line(e)}")
    return JSONResponse(protocol.encode(req, outputs, model.package))


def _lookup(models: dict[str, Model], name: str, version: str | None = None) -> Model:
    """The model called `name` (and `version`, when given), else a 404 naming what exists."""
    model = models.get(name)
    if model is None:
        raise ProtocolError(404, f"unknown model {name!r}; this server has: {', '.join(models)}")
    if version is not None and version != model.package.version:
        raise ProtocolError(404, f"model {name!r} has no version {version!r}; it has: "
                                 f"{model.package.version}")
    return model


def _predict_target(target: str, request: Request) -> str:
    """"digits:predict" -> "digits"; any other verb, or none, is refused with the fix."""
    name, sep, verb = target.rpartition(":")
    if sep and verb == "predict":
        return name
    if sep:
        raise ProtocolError(501, f"':{verb}' is not supported; use ':predict'")
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


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure answers {"error": message}: tritonclient reads that key, not "detail"."""

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, e: ProtocolError) -> JSONResponse:
        headers = {"Allow": "POST"} if e.status == 405 else None
        return _error(e.status, e.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        message = {404: f"no endpoint {where}; see /docs for the endpoints",
                   405: f"method not allowed: {where}"}.get(e.status_code, str(e.detail))
        return _error(e.status_code, message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI says 422 {"detail": [...]}; clients of these protocols expect 400 {"error"}.
        parts = [f"{'.'.join(str(x) for x in err.get('loc', ()))}: {err.get('msg')}"
                 for err in e.errors()]
        return _error(400, "bad request: " + "; ".join(parts))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {type(e).__name__}: {_first_line(e)}")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error body shape."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _first_line(e: Exception) -> str:
    """The first line of an exception's message (ORT's run to many lines)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket; a busy port is a DanluError naming the fix, not a traceback."""
    sock = None
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        if sock is not None:
            sock.close()
        raise DanluError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another "
                         "port (--port, or serve.port in the recipe)") from e
    return sock


def _url(host: str, port: int) -> str:
    """The base URL to print; IPv6 literals go in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
