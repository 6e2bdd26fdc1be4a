"""`python -m danlu.serve PATH... [--host H] [--port P]`: the server without the main CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from danlu.errors import DanluError
from danlu.serve.app import serve
from danlu.serve.config import ServeConfig


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve until interrupted; 2 on a usage or package error."""
    defaults = ServeConfig()
    parser = argparse.ArgumentParser(
        prog="python -m danlu.serve",
        description="Serve danlu model packages over HTTP (KServe v2 and /v1 predict).")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="model package folders, or run folders holding package/")
    parser.add_argument("--host", default=defaults.host,
                        help=f"address to bind (default {defaults.host}; 0.0.0.0 = all)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help=f"port to bind (default {defaults.port})")
    parser.add_argument("--threads", type=int, default=defaults.intra_op_threads,
                        help="ONNX Runtime intra-op threads (default 0 = ORT's choice)")
    args = parser.parse_args(argv)
    try:
        cfg = ServeConfig(host=args.host, port=args.port, intra_op_threads=args.threads)
        serve(args.paths, cfg)
    except ValidationError as e:
        print(f"danlu serve: {e}", file=sys.stderr)
        return 2
    except DanluError as e:
        print(f"danlu serve: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
