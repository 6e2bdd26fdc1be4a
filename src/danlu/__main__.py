"""`python -m danlu ...`: the `danlu` command by another name (same commands, flags, exit codes)."""

from __future__ import annotations

from danlu.cli import main

if __name__ == "__main__":
    main(prog_name="python -m danlu")
