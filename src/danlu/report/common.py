"""Small HTML helpers shared by the report's sections: escaping, numbers, tables, figures."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from danlu.runs import read_json

__all__ = ["e", "figure", "flatten", "jsonl", "kv", "load", "num", "records", "table"]


def e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return e(v)
    if isinstance(v, int):
        return f"{v:,}"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def load(path: Path) -> Any | None:
    try:
        return read_json(path) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def table(head: Iterable[str], rows: Iterable[Iterable[Any]], cls: str = "") -> str:
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(d, dict):
        out: list[tuple[str, Any]] = []
        for k, v in d.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(d, list) and d and all(isinstance(v, dict) for v in d):
        return [(prefix, f"{len(d)} entries")]
    return [(prefix, d)]


def kv(d: dict[str, Any], limit: int = 40) -> str:
    rows = [(e(k), num(v) if isinstance(v, (int, float)) else e(
        json.dumps(v) if isinstance(v, (list, dict)) else v)) for k, v in flatten(d)[:limit]]
    return table(("key", "value"), rows, "kv")


def records(items: list[dict[str, Any]], limit: int = 30) -> str:
    """A list of JSON objects as a table over their scalar (and flattened) fields."""
    flat = [dict(flatten(it)) for it in items[:limit]]
    keys: list[str] = []
    for f in flat:
        keys += [k for k, v in f.items() if k not in keys and not isinstance(v, (list, dict))]
    keys = keys[:12]
    return table(keys, ([num(f.get(k, "")) for k in keys] for f in flat))


def figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure>{svg}{cap}</figure>'
