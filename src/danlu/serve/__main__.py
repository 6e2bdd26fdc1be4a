"""`python -m danlu.serve PATH... [options]`: the server without the main CLI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from danlu.errors import DanluError
from danlu.serve.app import serve
from danlu.serve.config import ServeConfig


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve until interrupted (or SIGTERM); 2 on a usage or package error."""
    d = ServeConfig()
    parser = argparse.ArgumentParser(
        prog="python -m danlu.serve",
        description="Serve danlu model packages over HTTP (KServe v2 and /v1 predict).")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="model package folders, or run folders holding package/")
    parser.add_argument("--host", default=d.host,
                        help=f"address to bind (default {d.host}; 0.0.0.0 = all)")
    parser.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    parser.add_argument("--threads", type=int, default=d.intra_op_threads,
                        help="ONNX Runtime intra-op threads (default 0 = ORT's choice)")
    parser.add_argument("--no-batching", dest="batching", action="store_false",
                        help="run every request alone (dynamic batching is on by default)")
    parser.add_argument("--max-batch-size", type=int, default=d.max_batch_size)
    parser.add_argument("--max-queue-delay-ms", type=float, default=d.max_queue_delay_ms)
    parser.add_argument("--max-queue-size", type=int, default=d.max_queue_size)
    parser.add_argument("--inference-workers", type=int, default=d.inference_workers)
    parser.add_argument("--request-timeout", type=float, default=d.request_timeout_s,
                        help="seconds before a request gets 504")
    parser.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    parser.add_argument("--token", default=os.environ.get("DANLU_TOKEN") or None,
                        help="bearer token for the model endpoints (default: $DANLU_TOKEN)")
    parser.add_argument("--workers", type=int, default=d.workers,
                        help="server processes on one port")
    parser.add_argument("--graceful-timeout", type=float, default=d.graceful_timeout_s)
    parser.add_argument("--runtime", default=None,
                        help="serve with this entry of the package's `runtimes` (e.g. torch, "
                             "onnxruntime) instead of its default")
    a = parser.parse_args(argv)
    try:
        cfg = ServeConfig(host=a.host, port=a.port, intra_op_threads=a.threads,
                          batching=a.batching, max_batch_size=a.max_batch_size,
                          max_queue_delay_ms=a.max_queue_delay_ms,
                          max_queue_size=a.max_queue_size,
                          inference_workers=a.inference_workers,
                          request_timeout_s=a.request_timeout, max_body_bytes=a.max_body_bytes,
                          token=a.token, workers=a.workers, graceful_timeout_s=a.graceful_timeout,
                          runtime=a.runtime)
        serve(a.paths, cfg)
    except (ValidationError, DanluError) as e:
        print(f"danlu serve: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
