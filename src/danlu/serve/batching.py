"""Dynamic batching: a per-model queue whose requests run together in one ONNX Runtime call.

The collector takes the first waiting request, waits for a free inference slot, then takes
every compatible request already queued (or arriving within `max_queue_delay_ms`) up to
`max_batch_size` rows, and runs them as one batch in a worker thread; each caller gets its
own rows back. Requests that arrive while a batch computes are batched for free, which is
why the default delay is 0 (as in Triton).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from danlu.serve.config import ServeConfig
from danlu.serve.metrics import Metrics
from danlu.serve.package import Package
from danlu.serve.protocols.base import ProtocolError
from danlu.serve.runtimes import Runtime

__all__ = ["Batcher", "batchable"]

Tensors = dict[str, np.ndarray]


@dataclass(eq=False)
class _Job:
    """One request (or one chunk of a split request) waiting for its rows."""

    inputs: Tensors
    rows: int
    key: tuple
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


def batchable(package: Package) -> bool:
    """True when every input and output has a leading variable batch dimension."""
    return all(s.shape and s.shape[0] == -1 for s in (*package.inputs, *package.outputs))


class Batcher:
    """The queue and collector for one model; `await infer(inputs)` returns every output."""

    def __init__(self, package: Package, runtime: Runtime, cfg: ServeConfig, executor: Executor,
                 slots: asyncio.Semaphore, metrics: Metrics):
        self.name, self.runtime, self.cfg = package.name, runtime, cfg
        self.executor, self.slots, self.metrics = executor, slots, metrics
        self.merge = cfg.batching and batchable(package)
        self.max_rows = cfg.max_batch_size
        self.queue: deque[_Job] = deque()
        self.wakeup = asyncio.Event()
        self.running: set[asyncio.Task] = set()
        self.task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the collector on the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self._collect())

    async def stop(self) -> None:
        """Finish what is queued and running (graceful shutdown), then stop the collector."""
        while self.queue or self.running:
            await asyncio.sleep(0.01)
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def infer(self, inputs: Tensors) -> Tensors:
        """Queue `inputs` (split into max_batch_size chunks when batching) and await outputs."""
        rows = _rows(inputs)
        chunks = math.ceil(rows / self.max_rows) if self.merge and rows > self.max_rows else 1
        if len(self.queue) + chunks > self.cfg.max_queue_size:
            raise ProtocolError(429, f"model {self.name!r} is overloaded: "
                                     f"{len(self.queue)} requests queued (max_queue_size "
                                     f"{self.cfg.max_queue_size}); retry after a second")
        if chunks == 1:
            return await self._submit(inputs, rows)
        parts = [self._submit({k: v[i:i + self.max_rows] for k, v in inputs.items()},
                              min(self.max_rows, rows - i))
                 for i in range(0, rows, self.max_rows)]
        results = await asyncio.gather(*parts)
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}

    def _submit(self, inputs: Tensors, rows: int) -> asyncio.Future:
        """Put one job on the queue; the returned future resolves to its outputs."""
        key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items()))
        job = _Job(inputs, rows, key, asyncio.get_running_loop().create_future())
        self.queue.append(job)
        self.metrics.queued.labels(self.name).set(len(self.queue))
        self.wakeup.set()
        return job.future

    async def _collect(self) -> None:
        """Forever: wait for work and a free slot, gather a batch, run it in the pool."""
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            await self.slots.acquire()
            batch = await self._gather(loop)
            self.metrics.queued.labels(self.name).set(len(self.queue))
            if not batch:
                self.slots.release()
                continue
            task = loop.create_task(self._run(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> list[_Job]:
        """Take live jobs that share the first one's shapes, up to max_batch_size rows."""
        batch: list[_Job] = []
        rows, deadline = 0, loop.time() + self.cfg.max_queue_delay_ms / 1000
        while True:
            while self.queue and self.queue[0].future.done():  # timed out or disconnected
                self.queue.popleft()
            if self.queue:
                job = self.queue[0]
                if batch and (job.key != batch[0].key or rows + job.rows > self.max_rows):
                    return batch
                batch.append(self.queue.popleft())
                rows += job.rows
                if not self.merge or rows >= self.max_rows:
                    return batch
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or not batch:
                return batch
            self.wakeup.clear()
            try:
                await asyncio.wait_for(self.wakeup.wait(), remaining)
            except TimeoutError:
                return batch

    async def _run(self, batch: list[_Job]) -> None:
        """Run one batch off the event loop and hand each caller its rows."""
        try:
            now = time.perf_counter()
            for job in batch:
                self.metrics.queue.labels(self.name).observe(now - job.queued_at)
            inputs = batch[0].inputs if len(batch) == 1 else {
                k: np.concatenate([j.inputs[k] for j in batch]) for k in batch[0].inputs}
            try:
                outputs = await self._compute(inputs, len(batch))
            except Exception as e:
                if len(batch) == 1:
                    _settle(batch[0].future, error=e)
                    return
                # One bad request must not fail its neighbours: run each alone to find it.
                for job in batch:
                    try:
                        _settle(job.future, await self._compute(job.inputs, 1))
                    except Exception as err:
                        _settle(job.future, error=err)
                return
            start = 0
            for job in batch:
                _settle(job.future, {k: v[start:start + job.rows] for k, v in outputs.items()}
                        if len(batch) > 1 else outputs)
                start += job.rows
        finally:
            self.slots.release()

    async def _compute(self, inputs: Tensors, requests: int) -> Tensors:
        """One runtime call in the pool (ORT releases the GIL); timed for the metrics."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        running = self.metrics.running.labels(self.name)
        running.inc()
        try:
            outputs = await loop.run_in_executor(self.executor, self.runtime.run, inputs, None)
        finally:
            running.dec()
        self.metrics.compute.labels(self.name).observe(time.perf_counter() - t0)
        self.metrics.batch_rows.labels(self.name).observe(_rows(inputs))
        self.metrics.batch_requests.labels(self.name).observe(requests)
        return outputs


def _rows(inputs: Tensors) -> int:
    """The batch size of a request: dim 0 of its first input (1 for a scalar)."""
    first = next(iter(inputs.values()))
    return int(first.shape[0]) if first.ndim else 1


def _settle(future: asyncio.Future, result: Tensors | None = None,
            error: BaseException | None = None) -> None:
    """Resolve a caller's future unless it gave up (timeout or disconnect)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
