"""The recipe's `serve:` section: where the HTTP server listens and how hard it runs."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ServeConfig"]


class ServeConfig(BaseModel, extra="forbid"):
    """How `danlu serve` binds and runs; pydantic only, so recipes load without torch."""

    # Loopback by default: a model server reachable from the network is a choice the user
    # makes (host="0.0.0.0"), never a default they discover later.
    host: str = "127.0.0.1"
    # 8080 is what KServe/Triton-style clients and container probes usually assume.
    port: int = Field(8080, ge=1, le=65535)
    # ONNX Runtime threads per call; 0 = cores / inference_workers, so concurrent batches
    # share the cores instead of oversubscribing them. Set it to cores / (workers x
    # inference_workers) when several server processes share one machine.
    intra_op_threads: int = Field(0, ge=0)
    # Dynamic batching: queued requests for one model run as one ONNX Runtime call. Off =
    # every request runs alone (still queued, bounded and timed out the same way).
    batching: bool = True
    # Rows per ONNX Runtime call; larger requests are split into chunks. 8: conv nets on a
    # small CPU are cheapest per row at batch 4-8 (measured here, 3-block CNN on 64x64:
    # 0.45 ms/row at b8, 0.65 at b32, 0.70 at b1); MLPs gain little past that.
    max_batch_size: int = Field(8, ge=1)
    # How long the first request of a batch waits for company. 0 (Triton's default) waits
    # for nobody: requests that arrive while a batch runs are batched anyway, for free.
    max_queue_delay_ms: float = Field(0.0, ge=0)
    # Requests waiting per model; a full queue answers 429 + Retry-After at once, so memory
    # stays bounded under overload instead of growing with the backlog.
    max_queue_size: int = Field(256, ge=1)
    # Batches running at once across all models (threads in the inference pool). 2 keeps one
    # batch gathering while one computes; more only helps with more cores.
    inference_workers: int = Field(2, ge=1)
    # A request not answered in this time gets 504 (and is dropped if still queued).
    request_timeout_s: float = Field(30.0, gt=0)
    # Largest request body; bigger is 413 before it is read. 16 MiB holds a batch of 1,000
    # 64x64 FP32 images in JSON.
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    # Bearer token for the inference and model endpoints (health, metrics, docs stay open);
    # None = no auth. The CLI also reads DANLU_TOKEN so the token stays out of `ps`.
    token: str | None = Field(None, min_length=1, repr=False)
    # Server processes on one port (uvicorn workers); the server keeps no state between
    # requests, so N processes behave as one with N times the CPU.
    workers: int = Field(1, ge=1)
    # On SIGTERM: stop accepting, then give queued and running requests this long to finish.
    graceful_timeout_s: float = Field(30.0, ge=0)
    # Serve every package with this runtime (an entry of its danlu-model.json `runtimes`, e.g.
    # "torch", "onnxruntime", "onnxruntime-int8") instead of the default export measured as
    # fastest here. None = each package's own `runtime`.
    runtime: str | None = Field(None, min_length=1)
