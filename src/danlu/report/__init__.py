"""The run report: one self-contained report.html (inline SVG plots from matplotlib)."""

from __future__ import annotations

from typing import Any

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    # matplotlib loads on first use, so `import danlu.report` stays cheap.
    if name == "write_report":
        from danlu.report.html import write_report

        return write_report
    raise AttributeError(f"module 'danlu.report' has no attribute {name!r}")
