"""The model card (README.md) of a compressed variant's package, for every model family."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from danlu.compress.measure import Measured

__all__ = ["variant_card"]


def _runtimes(meta: dict[str, Any]) -> str:
    """The package's runtimes as export measured them (a variant built from a model folder has
    one per runtime of its family; a quantized graph has one)."""
    rows = []
    for k, e in meta["runtimes"].items():
        p, lat = e.get("parity") or {}, e.get("latency_ms") or {}
        gate = "passed" if e.get("passed", True) else "rejected: " + "; ".join(e.get("reasons", []))
        agree = p.get("label_agreement")
        rows.append(f"| {k}{' (default)' if k == meta['runtime'] else ''} | {e.get('dtype')} | "
                    f"{'-' if agree is None else format(agree, '.2%')} | "
                    f"{p.get('max_abs_diff', float('nan')):.2g} | {lat.get('b32', float('nan')):.3f} | "
                    f"{e.get('size_bytes', 0) / 1e6:.2f} | {gate} |")
    return "\n".join(rows)


def variant_card(meta: dict[str, Any], m: Measured, info: dict[str, Any]) -> str:
    c = meta["compression"]
    lat = c["latency"]
    ci = m.metric_ci
    shown = f"{m.value:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")
    what = (f"{len(meta.get('labels') or [])} classes" if meta.get("labels")
            else f"{meta.get('task', 'regression')}, returns `value`")
    others = ", ".join(f"{k} {v:.4g}" for k, v in m.headline.items()
                       if k != m.metric and isinstance(v, float))
    gates = "\n".join(f"- {k}: {'passed' if g['passed'] else 'FAILED — ' + g.get('reason', '')}"
                      for k, g in c["gates"].items()) or "- none (the reference)"
    inputs = "\n".join(f"| `{f['name']}` | {f['type']} | {f['input']['datatype']} "
                       f"{f['input']['shape']} |" for f in meta.get("features", []))
    return f"""# {meta['name']} — compressed variant `{c['variant']}` (version {meta['version']})

Made by `danlu compress` from `{c['from']}` of run {meta.get('provenance', {}).get('run', '?')}
(`{info.get('source', '?')}`, {what}). Steps:
{', '.join(c['steps']) or 'none (the model compressed)'}.

Clients send raw values, as to the uncompressed package (`danlu serve .`):

| input | feature type | client sends |
|---|---|---|
{inputs}

Served by `{c['runtime']}` ({c['dtype']}); every number below was measured through the package
as `danlu serve` loads it.

| measure | value |
|---|---|
| test {m.metric} ({m.metrics.get('n', len(m.labels))} rows, 95% CI) | {shown} |
| other test metrics | {others or '-'} |
| parameters / non-zero | {c['params']:,} / {c['nonzero_params']:,} |
| served artifact bytes / deflated (zip) bytes | {c['size_bytes']:,} / {c['deflated_bytes']:,} |
| latency b1 / b32 (median, {lat['threads']} threads) | {lat['b1_ms']:.3f} / {lat['b32_ms']:.3f} ms |

## Runtimes in this package
| runtime | dtype | labels agree | max output diff | b32 ms | MB | gates |
|---|---|---|---|---|---|---|
{_runtimes(meta)}

## Gates (vs its parent and the baseline)
{gates}

The deflated size is what the zip of the served artifact weighs: zeros left by unstructured
pruning compress, while the file itself stores dense tensors (the runtimes run dense kernels).
"""
