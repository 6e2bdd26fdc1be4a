"""The run folder: layout, manifest.json, stage cache keys and atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from danlu.errors import DanluError

__all__ = ["Run", "StageResult", "atomic_write", "read_json", "utc_stamp", "write_json"]

MANIFEST = "manifest.json"
LOG = "log.txt"  # tracebacks of the stages that failed, oldest first


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write to a temp file beside `path`, fsync, rename: readers never see half a file.

    The file gets 0666 & ~umask (0644 usually), as open() would give it: run folders are shared."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = data.encode() if isinstance(data, str) else data
    # Not tempfile.mkstemp: it creates 0600. O_EXCL on a random name is mkstemp's own recipe,
    # and the kernel applies the umask (reading it with os.umask() would race other threads).
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Versions that decide a result: danlu, python, and the engines installed."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("danlu", "torch", "onnx", "onnxruntime", "numpy", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


@dataclass
class StageResult:
    """What a stage made: paths (relative to the run folder) and headline metrics."""

    paths: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One run folder. Stages read their inputs from it and write only under their subfolder."""

    dir: Path
    recipe: Any  # danlu.recipe.Recipe (not imported here to keep this module light)

    @classmethod
    def create(cls, recipe: Any, out: Path | str = "runs") -> Run:
        base = Path(out) / f"{recipe.name}-{utc_stamp()}"
        d, n = base, 1
        while d.exists():  # two runs in the same second get -2, -3, ...
            n += 1
            d = base.with_name(f"{base.name}-{n}")
        d.mkdir(parents=True)
        run = cls(d, recipe)
        atomic_write(d / "recipe.yaml", recipe.dump())
        write_json(d / MANIFEST, {"name": recipe.name, "created": _now(), "versions": versions(),
                                  "git_commit": _git_commit(), "stages": {}})
        return run

    @classmethod
    def open(cls, path: Path | str) -> Run:
        """An existing run folder, with the recipe it was resolved with."""
        from danlu.recipe import load_recipe

        d = Path(path)
        if not (d / MANIFEST).is_file() or not (d / "recipe.yaml").is_file():
            raise DanluError(f"{d} is not a danlu run folder (no manifest.json / recipe.yaml);"
                             " pass a folder made by `danlu run`")
        return cls(d, load_recipe(d / "recipe.yaml"))

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def stage_dir(self, stage: str) -> Path:
        p = self.dir / stage
        p.mkdir(parents=True, exist_ok=True)
        return p

    # ---- manifest ----
    @property
    def manifest(self) -> dict[str, Any]:
        return read_json(self.dir / MANIFEST)

    def stage_entry(self, stage: str) -> dict[str, Any] | None:
        return self.manifest["stages"].get(stage)

    def mark(self, stage: str, status: str, key: str, **extra: Any) -> None:
        """Record a stage's status (running/finished/failed) and its cache key."""
        m = self.manifest
        entry = m["stages"].get(stage, {})
        entry.update(status=status, key=key, **extra)
        if status == "running":
            entry["started"] = _now()
            entry.pop("finished", None)
            entry.pop("error", None)
        else:
            entry["finished"] = _now()
        m["stages"][stage] = entry
        write_json(self.dir / MANIFEST, m)

    def log_error(self, stage: str, error: BaseException) -> Path:
        """Append the error's full traceback to RUN/log.txt; set `error.run_log` to that path
        (the CLI prints one line and points there) and return it."""
        import traceback

        path = self.dir / LOG
        old = path.read_text() if path.is_file() else ""
        text = "".join(traceback.format_exception(error))
        atomic_write(path, f"{old}{_now()} stage {stage} failed:\n{text}\n")
        try:
            error.run_log = path  # type: ignore[attr-defined]
        except AttributeError:  # an exception type without a __dict__
            pass
        return path

    def is_done(self, stage: str, key: str) -> bool:
        entry = self.stage_entry(stage)
        return bool(entry and entry.get("status") == "finished" and entry.get("key") == key)


def cache_key(*parts: str) -> str:
    """A stage's cache key: hash of its recipe sections, its inputs' keys and danlu's version."""
    from danlu import __version__

    return hashlib.sha256("|".join([__version__, *parts]).encode()).hexdigest()[:16]
