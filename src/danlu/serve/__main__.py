"""`python -m danlu.serve PATH... [serve.KEY=VALUE ...] [options]`: `danlu serve` by another name.

The same command object, so the flags, the settings' resolution (recipe section, overrides,
flags: `danlu.serve.config.resolve_serve_config`) and the exit codes are the same.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run `danlu serve` with `argv` (default: sys.argv[1:]); exits with its exit code."""
    from typer.main import get_command

    from danlu.threads import configure

    configure()  # before anything loads an OpenMP or BLAS runtime (danlu.threads)
    from danlu.cli import app, guarded

    command = get_command(app).commands["serve"]
    return guarded(lambda: command.main(args=argv, prog_name="python -m danlu.serve"), "serve")


if __name__ == "__main__":
    sys.exit(main())
