"""The recipe's `serve:` section: where the HTTP server listens and how hard it runs.

Also how `danlu serve` (and `python -m danlu.serve`) resolves it: pydantic and YAML only, no
torch and no FastAPI, so a serving machine reads a run's settings without the training stack.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from danlu.errors import RecipeError

__all__ = ["RECIPE", "ServeConfig", "resolve_serve_config", "split_overrides"]

RECIPE = "recipe.yaml"  # a run folder's resolved recipe (runs.py writes it)
log = logging.getLogger("danlu.serve")


class ServeConfig(BaseModel, extra="forbid"):
    """How `danlu serve` binds and runs; pydantic only, so recipes load without torch."""

    # Loopback by default: a model server reachable from the network is a choice the user
    # makes (host="0.0.0.0"), never a default they discover later.
    host: str = "127.0.0.1"
    # 8080 is what KServe/Triton-style clients and container probes usually assume.
    port: int = Field(8080, ge=1, le=65535)
    # Threads per inference call (ONNX Runtime intra-op, torch.set_num_threads); 0 = cores /
    # (workers x inference_workers), so concurrent batches of every server process share the
    # cores instead of oversubscribing them (danlu.threads; /metrics danlu_intra_op_threads).
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
    # requests, so N processes behave as one with N times the CPU. They split the cores: each
    # gets cores / workers (OMP_NUM_THREADS etc.) and a short OpenMP spin (danlu.threads).
    workers: int = Field(1, ge=1)
    # On SIGTERM: stop accepting, then give queued and running requests this long to finish.
    graceful_timeout_s: float = Field(30.0, ge=0)
    # Serve every package with this runtime (an entry of its danlu-model.json `runtimes`, e.g.
    # "torch", "onnxruntime", "onnxruntime-int8") instead of the default export measured as
    # fastest here. None = each package's own `runtime`.
    runtime: str | None = Field(None, min_length=1)


class _Section(BaseModel):
    """`{"serve": ...}`: validating through it gives errors the recipe's dotted paths (serve.port)."""

    serve: ServeConfig


def split_overrides(args: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """`danlu serve`'s arguments as (folders, KEY=VALUE overrides), the rule `danlu run` uses:
    an argument holding '=' that names no existing path is an override."""
    paths: list[Path] = []
    overrides: list[str] = []
    for arg in args:
        if "=" in str(arg) and not Path(arg).exists():
            overrides.append(str(arg))
        else:
            paths.append(Path(arg))
    return paths, overrides


def resolve_serve_config(paths: Sequence[str | Path],
                         overrides: Sequence[str] | Mapping[str, Any] | None = None,
                         flags: Mapping[str, Any] | None = None) -> ServeConfig:
    """The server's settings, each layer over the one before: ServeConfig's defaults, the first
    run folder's recipe.yaml `serve:` section, `serve.KEY=VALUE` overrides, then `flags`
    (ServeConfig field -> value; None = not given)."""
    # The very override syntax and error messages of `danlu run` (pydantic and yaml only).
    from danlu.overrides import parse_overrides

    settings = _run_section([Path(p) for p in paths])
    raw = overrides if isinstance(overrides, Mapping) else list(overrides or [])
    for key, value in parse_overrides(raw).items():
        field = key.removeprefix("serve.")
        if field == key:
            raise RecipeError(key, got=value, expected="a serve.KEY=VALUE override (danlu "
                              "serve reads only the recipe's serve section)",
                              hint=f"valid keys: {', '.join(sorted(ServeConfig.model_fields))}")
        settings[field] = value
    settings.update({k: v for k, v in (flags or {}).items() if v is not None})
    return _validate(settings)


def _run_section(paths: list[Path]) -> dict[str, Any]:
    """The first run folder's `serve:` section (a package folder has none); {} when no run.
    One server has one port and one batcher setting, so later runs' sections are not used;
    a section that differs from the one used is named in a warning, not silently dropped."""
    # "danlu-model.json" is serve.package.MANIFEST (that module imports numpy): a package.
    recipes = [p / RECIPE for p in paths if not (p / "danlu-model.json").is_file()
               and (p / RECIPE).is_file()]
    if not recipes:
        return {}
    used = _read_section(recipes[0])
    for other in recipes[1:]:
        theirs = _read_section(other)
        differ = sorted(k for k in {*used, *theirs} if used.get(k) != theirs.get(k))
        if differ:
            log.warning("danlu serve: using the serve section of %s; the one in %s differs "
                        "(%s) and is not used", recipes[0], other, ", ".join(differ))
    return used


def _read_section(recipe: Path) -> dict[str, Any]:
    """`serve:` of a run's recipe.yaml, checked alone so that an error names the file."""
    try:
        raw = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RecipeError("recipe", got=str(recipe), expected=f"a readable YAML file ({e})") \
            from None
    section = raw.get("serve") if isinstance(raw, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise RecipeError("serve", got=section, expected="a mapping of serve settings",
                          hint=f"in {recipe}")
    _validate(section, source=recipe)
    return dict(section)


def _validate(settings: dict[str, Any], source: Path | None = None) -> ServeConfig:
    """ServeConfig from `settings`; an error is the RecipeError `danlu run` would give."""
    try:
        return _Section.model_validate({"serve": settings}).serve
    except ValidationError as e:
        from danlu.overrides import section_error

        err = section_error(e, {"serve": settings}, _Section)
        if source is None:
            raise err from None
        hint = "; ".join(h for h in (err.hint, f"in {source}") if h)
        raise RecipeError(err.path, got=err.got, expected=err.expected, hint=hint) from None
