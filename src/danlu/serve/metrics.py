"""Prometheus metrics for `GET /metrics`, one registry per app (danlu_ prefix).

The same ideas as Triton's nv_inference_* and TorchServe's ts_* families: requests by model
and status, end-to-end latency, queue time, compute time, rows per batch, in-flight requests.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Seconds: 0.5 ms .. 10 s, dense where a CPU model server lives (1-100 ms).
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The server's metric families in their own registry (several apps per process in tests)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("danlu_requests", "Inference requests by model and HTTP status",
                                ["model", "status"], registry=r)
        self.latency = Histogram("danlu_request_duration_seconds",
                                 "Inference request time, body read to response built",
                                 ["model"], buckets=_LATENCY, registry=r)
        self.queue = Histogram("danlu_queue_duration_seconds",
                               "Time a request waited in the batching queue", ["model"],
                               buckets=_LATENCY, registry=r)
        self.compute = Histogram("danlu_inference_duration_seconds",
                                 "ONNX Runtime time per batch", ["model"], buckets=_LATENCY,
                                 registry=r)
        self.batch_rows = Histogram("danlu_batch_size", "Rows per ONNX Runtime call",
                                    ["model"], buckets=_ROWS, registry=r)
        self.batch_requests = Histogram("danlu_batch_requests", "Requests merged per call",
                                        ["model"], buckets=_ROWS, registry=r)
        self.inflight = Gauge("danlu_inflight_requests", "Inference requests being handled",
                              ["model"], registry=r)
        self.running = Gauge("danlu_running_batches", "ONNX Runtime calls in progress",
                             ["model"], registry=r)
        self.queued = Gauge("danlu_queue_size", "Requests waiting in the batching queue",
                            ["model"], registry=r)
        self.threads = Gauge("danlu_intra_op_threads", "Threads per inference call of this "
                             "server process (ONNX Runtime intra-op or torch), by model",
                             ["model"], registry=r)
        self.unseen = Counter("danlu_unseen_values", "Values never seen in training (a "
                              "category's __unknown__), by model and feature",
                              ["model", "feature"], registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition of every family."""
        return generate_latest(self.registry)
