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
    # ONNX Runtime threads per inference; 0 lets ORT pick (one per physical core). Set it
    # to cores / replicas when several server processes share one machine.
    intra_op_threads: int = Field(0, ge=0)
