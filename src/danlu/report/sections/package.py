"""The package section: what `danlu serve` will load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from danlu.report.common import e, table

__all__ = ["package"]


def package(d: Path, pkg: dict[str, Any] | None) -> str:
    if not pkg:
        return ""
    p = pkg.get("parity", {})
    size = (d / "package" / pkg.get("artifacts", {}).get("onnx", "model.onnx"))
    rows = [("version", pkg.get("version"))]
    c = pkg.get("compression")
    if isinstance(c, dict):  # a compressed variant was promoted into package/
        acc = pkg.get("metrics", {}).get("test", {}).get("accuracy")
        rows.append(("compressed variant", f"{c.get('variant')} (from {c.get('from')}): "
                     f"{', '.join(c.get('steps', [])) or 'no steps'}; test accuracy "
                     f"{acc:.4f}" if isinstance(acc, float) else f"{c.get('variant')}"))
    rows += [("inputs", json.dumps(pkg.get("inputs"))), ("outputs", json.dumps(pkg.get("outputs"))),
            ("runtime", pkg.get("runtime")),
            ("model.onnx", f"{size.stat().st_size / 1e6:.2f} MB" if size.is_file() else "missing"),
            ("parity", f"max |Δ| {p.get('max_abs_diff', float('nan')):.2e} (tolerance "
                       f"{p.get('atol')})" + (f", labels agree {p['label_agreement']:.2%}"
                                              if p.get("label_agreement") is not None else "")
                       + f" on {p.get('rows')} rows")]
    return (f'<section id="package"><h2>Package</h2>{table(("", ""), ((e(k), e(v)) for k, v in rows), "kv")}'
            f"<pre>danlu serve {e(d / 'package')}</pre></section>")
