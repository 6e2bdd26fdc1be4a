"""The HTTP server: FastAPI routes for KServe v2 and TF-Serving /v1 over loaded model packages."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from danlu.errors import DanluError
from danlu.serve.auth import BearerAuth
from danlu.serve.batching import Batcher
from danlu.serve.config import ServeConfig
from danlu.serve.metrics import CONTENT_TYPE_LATEST, Metrics
from danlu.serve.openapi import V1_PREDICT, V2_INFER
from danlu.serve.package import Package, load_package
from danlu.serve.playground import playground_html
from danlu.serve.protocols import KServeV2, Protocol, ProtocolError, TFServingV1
from danlu.serve.protocols.kserve_v2 import model_metadata
from danlu.serve.runtimes import Runtime, RuntimeInputError, load_runtime

try:  # the package version when the rest of danlu is importable, else this server's own
    from danlu import __version__
except ImportError:
    __version__ = "0.1.0"

__all__ = ["create_app", "serve"]

log = logging.getLogger("danlu.serve")
KSERVE, TFSERVING = KServeV2(), TFServingV1()
# Open Inference Protocol extensions this server implements.
EXTENSIONS: list[str] = ["binary_tensor_data"]
# `danlu serve --workers N`: how the parent tells each worker process what to load.
_WORKER_ENV = "DANLU_SERVE_WORKER_ARGS"


@dataclass
class Model:
    """A served model: its package (the contract), the runtime that executes it, its queue."""

    package: Package
    runtime: Runtime
    batcher: Batcher | None = None


class _Pool:
    """Inference threads shared by every model, and the semaphore that bounds running batches."""

    def __init__(self, cfg: ServeConfig):
        self.executor = ThreadPoolExecutor(cfg.inference_workers, thread_name_prefix="danlu-infer")
        self.workers = cfg.inference_workers


def create_app(packages: list[Package] | list[Path], cfg: ServeConfig | None = None) -> FastAPI:
    """A FastAPI app serving `packages` (Package objects or package/run folders), loaded now."""
    cfg = cfg or ServeConfig()
    models = load_models(packages, cfg)
    metrics, pool = Metrics(), _Pool(cfg)
    app = FastAPI(title="danlu", version=__version__, lifespan=_lifespan,
                  description="KServe v2 (Open Inference Protocol, with binary tensor data) and "
                              f"TF-Serving-style /v1 predict for: {', '.join(models)}")
    app.state.models, app.state.ready, app.state.cfg = models, True, cfg
    app.state.metrics, app.state.pool, app.state.batchers = metrics, pool, {}
    _add_error_handlers(app)
    _add_kserve_routes(app, models)
    _add_tfserving_routes(app, models)
    _add_operational_routes(app, models)
    if cfg.token:
        app.add_middleware(BearerAuth, token=cfg.token)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown (SIGTERM after uvicorn stopped accepting): finish queued work, then stop."""
    yield
    app.state.ready = False
    for batcher in list(app.state.batchers.values()):
        await batcher.stop()
    app.state.pool.executor.shutdown(wait=True)


def serve(paths: list[Path], cfg: ServeConfig | None = None) -> None:
    """Load the packages at `paths`, print the URL once, and serve until interrupted."""
    import uvicorn  # only the process that listens needs it

    cfg = cfg or ServeConfig()
    if cfg.workers > 1:
        return _serve_workers(paths, cfg)
    app = create_app(list(paths), cfg)
    sock = _bind(cfg.host, cfg.port)  # bound before printing: the URL printed is live
    url = _url(cfg.host, sock.getsockname()[1])
    print(f"danlu: serving {', '.join(app.state.models)} at {url}  (Ctrl+C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False,
                                           timeout_graceful_shutdown=int(cfg.graceful_timeout_s)))
    # uvicorn re-raises the signal it stopped on once it has shut down; a no-op handler makes
    # SIGTERM a clean exit 0 after the graceful drain, as process managers expect.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_workers(paths: list[Path], cfg: ServeConfig) -> None:
    """N uvicorn worker processes on one socket; each loads the packages itself."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    for path in paths:  # fail here, once, with a clear message, not in N children
        load_package(path)
    os.environ[_WORKER_ENV] = json.dumps({"paths": [str(p) for p in paths],
                                          "cfg": cfg.model_dump(mode="json")})
    sock = _bind(cfg.host, cfg.port)
    url = _url(cfg.host, sock.getsockname()[1])
    config = uvicorn.Config(f"{__name__}:app_from_env", factory=True, workers=cfg.workers,
                            log_level="info", access_log=False,
                            timeout_graceful_shutdown=int(cfg.graceful_timeout_s))
    print(f"danlu: serving {len(paths)} package(s) at {url} with {cfg.workers} workers  "
          "(Ctrl+C stops)", flush=True)
    Multiprocess(config, sockets=[sock]).run()


def app_from_env() -> FastAPI:
    """The app a `--workers` child builds from what its parent put in the environment."""
    spec = json.loads(os.environ[_WORKER_ENV])
    return create_app([Path(p) for p in spec["paths"]], ServeConfig(**spec["cfg"]))


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

    @app.post("/v2/models/{name}/infer", openapi_extra=V2_INFER)
    async def infer(name: str, request: Request) -> Response:
        """Inference: JSON tensors, or binary tensor data after Inference-Header-Content-Length
        bytes of JSON. No Content-Type needed."""
        return await _infer(KSERVE, _lookup(models, name), request)

    @app.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=V2_INFER)
    async def version_infer(name: str, version: str, request: Request) -> Response:
        """Inference on one model version."""
        return await _infer(KSERVE, _lookup(models, name, version), request)


def _add_tfserving_routes(app: FastAPI, models: dict[str, Model]) -> None:
    """TF-Serving-style routes: /v1/models/{name}:predict and the model status."""
    # `{target}` is "name:predict": a path param stops at '/' but not at ':', so the verb is
    # split off in the handler, where an unknown verb or a missing one gets a clear answer.

    @app.post("/v1/models/{target}", openapi_extra=V1_PREDICT)
    async def predict(target: str, request: Request) -> Response:
        """TF-Serving predict: POST /v1/models/{name}:predict with instances or inputs."""
        name = _predict_target(target, request)
        return await _infer(TFSERVING, _lookup(models, name), request)

    @app.post("/v1/models/{name}/versions/{target}", openapi_extra=V1_PREDICT)
    async def version_predict(name: str, target: str, request: Request) -> Response:
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


def _add_operational_routes(app: FastAPI, models: dict[str, Model]) -> None:
    """Prometheus metrics and the playground page."""

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: danlu_* request, latency, queue and batch metrics."""
        return Response(app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def playground() -> HTMLResponse:
        """The playground: draw a digit or type numbers, see the model's answer."""
        return HTMLResponse(playground_html([m.package for m in models.values()]))


async def _infer(protocol: Protocol, model: Model, request: Request) -> Response:
    """Read the raw body (bounded), decode, queue for a batch, encode; metered per status."""
    state = request.app.state
    name, m, started = model.package.name, state.metrics, time.perf_counter()
    status = 500
    m.inflight.labels(name).inc()
    try:
        raw = await _read_body(request, state.cfg.max_body_bytes)
        req = protocol.decode_body(raw, request.headers, model.package)
        outputs = await _outputs(_batcher(request.app, model).infer(req.inputs), request,
                                 state.cfg.request_timeout_s)
        if req.outputs is not None:
            outputs = {k: outputs[k] for k in req.outputs}
        content, headers = protocol.encode_body(req, outputs, model.package)
        status = 200
        return Response(content, headers=headers)
    except ProtocolError as e:
        status = e.status
        raise
    except _ClientGone:
        status = 499  # nginx's "client closed request": nobody reads this response
        return Response(status_code=499)
    except RuntimeInputError as e:
        status = 400
        return _error(400, str(e))
    except Exception as e:  # the model's fault, not the client's: 500, and keep serving
        log.exception("model %r failed on a request", name)
        return _error(500, f"model {name!r} failed: {_first_line(e)}")
    finally:
        m.inflight.labels(name).dec()
        m.requests.labels(name, str(status)).inc()
        m.latency.labels(name).observe(time.perf_counter() - started)


class _ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _outputs(work: Coroutine, request: Request, timeout: float) -> dict:
    """Await `work`, but give up (and drop the queued job) on timeout (504) or disconnect."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, watch}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if task in done:
        return task.result()
    task.cancel()  # cancels the queued job's future: the collector skips it
    if watch in done:
        raise _ClientGone()
    raise ProtocolError(504, f"no answer within request_timeout_s={timeout:g} s; the server is "
                             "overloaded or the batch is too large")


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) past `limit` bytes without reading the rest."""
    declared = request.headers.get("content-length", "")
    too_big = ProtocolError(413, f"request body over max_body_bytes={limit}; send fewer rows per "
                                 "request (or raise --max-body-bytes)")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _batcher(app: FastAPI, model: Model) -> Batcher:
    """The model's batcher on this event loop (made on first use: tests run several loops)."""
    loop = asyncio.get_running_loop()
    batcher = app.state.batchers.get(model.package.name)
    if batcher is None or batcher.loop is not loop:
        pool = app.state.pool
        slots = app.state.__dict__.setdefault("_slots", {})
        sem = slots.setdefault(id(loop), asyncio.Semaphore(pool.workers))
        batcher = Batcher(model.package, model.runtime, app.state.cfg, pool.executor, sem,
                          app.state.metrics)
        batcher.start()
        app.state.batchers[model.package.name] = batcher
    return batcher


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


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure answers {"error": message}: tritonclient reads that key, not "detail"."""

    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, e: ProtocolError) -> JSONResponse:
        headers = {"Allow": "POST"} if e.status == 405 else None
        if e.status == 429:
            headers = {"Retry-After": "1"}
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
