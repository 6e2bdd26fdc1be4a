"""The HTTP server: FastAPI routes for KServe v2 and TF-Serving /v1 over loaded model packages."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI

from danlu.errors import DanluError
from danlu.serve.auth import BearerAuth
from danlu.serve.config import ServeConfig
from danlu.serve.metrics import Metrics
from danlu.serve.package import Package, load_package
from danlu.serve.routes import (
    Model,
    add_error_handlers,
    add_kserve_routes,
    add_operational_routes,
    add_tfserving_routes,
)
from danlu.serve.routes.common import __version__
from danlu.serve.runtimes import load_runtime, select_runtime
from danlu.serve.runtimes.base import intra_op_threads
from danlu.threads import configure

__all__ = ["create_app", "serve"]

log = logging.getLogger("danlu.serve")
# `danlu serve --workers N`: how the parent tells each worker process what to load.
_WORKER_ENV = "DANLU_SERVE_WORKER_ARGS"


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
    for name in models:  # what a user checks that --workers split the cores
        metrics.threads.labels(name).set(intra_op_threads(cfg))
    add_error_handlers(app)
    add_kserve_routes(app, models)
    add_tfserving_routes(app, models)
    add_operational_routes(app, models)
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
    print(f"danlu: serving {', '.join(app.state.models)} at {url}, {_threads(cfg)}  "
          "(Ctrl+C stops)", flush=True)
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
        select_runtime(load_package(path), cfg.runtime)
    # The children inherit this environment: each gets cores / workers for OpenMP, BLAS and
    # tokenizers, and a short OpenMP spin (the user's own settings are kept).
    configure(cfg.workers)
    os.environ[_WORKER_ENV] = json.dumps({"paths": [str(p) for p in paths],
                                          "cfg": cfg.model_dump(mode="json")})
    sock = _bind(cfg.host, cfg.port)
    url = _url(cfg.host, sock.getsockname()[1])
    config = uvicorn.Config(f"{__name__}:app_from_env", factory=True, workers=cfg.workers,
                            log_level="info", access_log=False,
                            timeout_graceful_shutdown=int(cfg.graceful_timeout_s))
    print(f"danlu: serving {len(paths)} package(s) at {url} with {cfg.workers} workers, "
          f"{_threads(cfg)}  (Ctrl+C stops)", flush=True)
    Multiprocess(config, sockets=[sock]).run()


def _threads(cfg: ServeConfig) -> str:
    """The start-up line's note on threads: per inference call, and how many calls at once."""
    n = intra_op_threads(cfg)
    k = cfg.inference_workers
    return (f"{n} thread{'s' if n != 1 else ''} per inference call x {k} call{'s' if k != 1 else ''}"
            " at once" + (" per worker" if cfg.workers > 1 else ""))


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
        # The package as served: `runtime` is the one running (metadata reports it).
        package = dataclasses.replace(package, runtime=select_runtime(package, cfg.runtime))
        models[package.name] = Model(package, load_runtime(package, cfg))
    return models


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
