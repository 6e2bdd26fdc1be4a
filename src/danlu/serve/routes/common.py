"""What the protocol routes share: model lookup, the inference path, the error body."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from danlu.serve.batching import Batcher
from danlu.serve.metrics import Metrics
from danlu.serve.package import Package
from danlu.serve.protocols import Protocol, ProtocolError
from danlu.serve.runtimes import TRUNCATED, Runtime, RuntimeInputError

try:  # the package version when the rest of danlu is importable, else this server's own
    from danlu import __version__
except ImportError:
    __version__ = "0.1.0"

__all__ = ["Model", "error", "first_line", "infer", "lookup"]

log = logging.getLogger("danlu.serve")


@dataclass
class Model:
    """A served model: its package (the contract), the runtime that executes it, its queue."""

    package: Package
    runtime: Runtime
    batcher: Batcher | None = None


async def infer(protocol: Protocol, model: Model, request: Request) -> Response:
    """Read the raw body (bounded), decode, queue for a batch, encode; metered per status."""
    state = request.app.state
    name, m, started = model.package.name, state.metrics, time.perf_counter()
    status = 500
    m.inflight.labels(name).inc()
    try:
        raw = await _read_body(request, state.cfg.max_body_bytes)
        req = protocol.decode_body(raw, request.headers, model.package)
        _count_unseen(m, name, model.package, req.inputs)
        outputs = await _outputs(_batcher(request.app, model).infer(req.inputs), request,
                                 state.cfg.request_timeout_s)
        truncated = outputs.pop(TRUNCATED, None)
        if truncated is not None:  # a text model: say which texts were cut to max_length
            req.truncated = np.flatnonzero(truncated).tolist()
        _check_missing(req.inputs, outputs, model.package)
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
        return error(400, str(e))
    except Exception as e:  # the model's fault, not the client's: 500, and keep serving
        log.exception("model %r failed on a request", name)
        return error(500, f"model {name!r} failed: {first_line(e)}")
    finally:
        m.inflight.labels(name).dec()
        m.requests.labels(name, str(status)).inc()
        m.latency.labels(name).observe(time.perf_counter() - started)


def _count_unseen(metrics: Metrics, name: str, package: Package,
                  inputs: dict[str, np.ndarray]) -> None:
    """Count values the model never saw in training (`danlu_unseen_values`): served, never an
    error, but a drift signal worth a dashboard."""
    for f in package.features:
        values = inputs.get(f.name)
        n = f.unseen(values) if values is not None else None
        if n:
            metrics.unseen.labels(name, f.name).inc(n)


def _check_missing(inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray],
                   package: Package) -> None:
    """A missing number (NaN) sent to a model that cannot impute it comes back as NaN: the
    client's value, so a 400 naming the columns, not the 500 of a model that failed. A package
    that allows non-finite input answers what its model answers."""
    if package.allow_nonfinite:
        return
    missing = []
    for f in package.features:
        arr = inputs.get(f.name)
        if arr is None or arr.dtype.kind != "f" or not np.isnan(arr).any():
            continue
        nan = np.isnan(arr).reshape(len(arr), -1).any(axis=0)
        cols = f.columns if len(f.columns) == len(nan) else [f.name]
        missing += [c for c, m in zip(cols, nan if len(cols) == len(nan) else [True],
                                      strict=True) if m]
    if missing and any(a.dtype.kind == "f" and not np.isfinite(a).all()
                       for a in outputs.values()):
        raise ProtocolError(400, f"missing values in {', '.join(missing)}: this model cannot "
                                 "impute them (its package was exported without imputation) "
                                 "and answers NaN; send a number in every number column")


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


def lookup(models: dict[str, Model], name: str, version: str | None = None) -> Model:
    """The model called `name` (and `version`, when given), else a 404 naming what exists."""
    model = models.get(name)
    if model is None:
        raise ProtocolError(404, f"unknown model {name!r}; this server has: {', '.join(models)}")
    if version is not None and version != model.package.version:
        raise ProtocolError(404, f"model {name!r} has no version {version!r}; it has: "
                                 f"{model.package.version}")
    return model


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error body shape."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def first_line(e: Exception) -> str:
    """The first line of an exception's message (ORT's run to many lines)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


