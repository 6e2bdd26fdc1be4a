"""Load a model package folder (danlu-model.json + artifacts) and check its declared contract."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from danlu.errors import DanluError

__all__ = ["DATATYPES", "MANIFEST", "Package", "TensorSpec", "TextSpec", "load_package"]

MANIFEST = "danlu-model.json"
FORMAT_MAJOR = "danlu-model/1"

# Open Inference Protocol datatype -> numpy dtype. BF16 has no numpy dtype: its JSON values
# are plain numbers, carried as float32 (every bf16 value is exact in fp32).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8), "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
    "BF16": np.dtype(np.float32),
    "BYTES": np.dtype(object),
}


@dataclass(frozen=True)
class TensorSpec:
    """One declared tensor: name, Open Inference Protocol datatype, shape (-1 = any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        """The KServe v2 metadata form: {"name", "datatype", "shape"}."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def describe(self) -> str:
        """Short human form for error messages, e.g. "pixels (FP32 [-1, 64])"."""
        return f"{self.name} ({self.datatype} {list(self.shape)})"


@dataclass(frozen=True)
class TextSpec:
    """danlu-model.json `text`: raw text in, token ids for the model (issue 9)."""

    max_length: int
    tokenizer: str = "tokenizer.json"
    model_inputs: tuple[str, ...] = ("input_ids", "attention_mask")


@dataclass
class Package:
    """A deployable model: its folder, the parsed danlu-model.json and the declared contract."""

    dir: Path
    meta: dict[str, Any]
    name: str
    version: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] | None = None
    task: str = "classification"
    runtime: str = "onnxruntime"
    artifacts: dict[str, str] = field(default_factory=dict)
    # danlu-model.json "allow_nonfinite": true lets NaN/Infinity inputs through (default 400).
    allow_nonfinite: bool = False
    # danlu-model.json `runtimes`: runtime name -> {"artifact", "dtype", gates...}; the ones a
    # server may be told to use (`--runtime`). Empty = only `runtime`, on the "onnx" artifact.
    runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A text model: clients send strings, the server tokenizes (None for tensor models).
    text: TextSpec | None = None

    @property
    def model_inputs(self) -> list[TensorSpec]:
        """What the runtime itself takes: the token tensors for text, else the inputs."""
        if self.text is None:
            return self.inputs
        return [TensorSpec(n, "INT64", (-1, -1)) for n in self.text.model_inputs]

    def artifact(self, key: str) -> Path:
        """Path of the artifact named `key` in danlu-model.json's `artifacts` (e.g. "onnx")."""
        if key not in self.artifacts:
            raise DanluError(f"{self.dir / MANIFEST}: artifacts has no {key!r} entry "
                             f"(has: {', '.join(self.artifacts) or 'none'})")
        path = self.dir / self.artifacts[key]
        if not path.is_file():
            raise DanluError(f"{path}: missing; {MANIFEST} names it as the {key!r} artifact")
        return path


def load_package(path: str | Path) -> Package:
    """Load the package at `path`: a package folder, or a run folder holding `package/`."""
    folder = resolve_package_dir(Path(path))
    manifest = folder / MANIFEST
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DanluError(f"{manifest}: cannot read it ({e})") from e
    except json.JSONDecodeError as e:
        raise DanluError(f"{manifest}: not valid JSON ({e})") from e
    return _parse_meta(folder, meta)


def resolve_package_dir(path: Path) -> Path:
    """The package folder for `path`: itself if it holds danlu-model.json, else `path/package`."""
    if (path / MANIFEST).is_file():
        return path
    if (path / "package" / MANIFEST).is_file():
        return path / "package"
    if not path.exists():
        raise DanluError(f"{path}: no such folder; expected a model package folder "
                         f"(holding {MANIFEST}) or a run folder (holding package/{MANIFEST})")
    raise DanluError(f"{path}: not a model package; expected {MANIFEST} in it, or a run folder "
                     f"with package/{MANIFEST} (`danlu run RECIPE` writes package/ in its export "
                     "stage)")


def _parse_meta(folder: Path, meta: Any) -> Package:
    """Check danlu-model.json's fields and build the Package; each error names the key."""
    where = folder / MANIFEST
    if not isinstance(meta, dict):
        raise _bad(where, "(top level)", meta, "a JSON object")
    fmt = meta.get("format")
    if not (isinstance(fmt, str) and fmt == FORMAT_MAJOR):
        raise _bad(where, "format", fmt, f"{FORMAT_MAJOR!r} (this danlu reads that format)")
    name = meta.get("name")
    if not (isinstance(name, str) and name and "/" not in name and ":" not in name):
        raise _bad(where, "name", name, "a non-empty string without '/' or ':' (used in URLs)")
    version = meta.get("version", "1")
    if not isinstance(version, (str, int)) or isinstance(version, bool) or str(version) == "":
        raise _bad(where, "version", version, 'a string such as "1"')
    artifacts = meta.get("artifacts", {})
    if not (isinstance(artifacts, dict) and all(isinstance(v, str) for v in artifacts.values())):
        raise _bad(where, "artifacts", artifacts,
                   'an object of file names, e.g. {"onnx": "model.onnx"}')
    inputs = _parse_specs(where, "inputs", meta.get("inputs"))
    outputs = _parse_specs(where, "outputs", meta.get("outputs"))
    labels = _parse_labels(where, meta.get("labels"), outputs)
    runtimes = meta.get("runtimes") or {}
    if not (isinstance(runtimes, dict) and all(isinstance(v, dict) for v in runtimes.values())):
        raise _bad(where, "runtimes", runtimes,
                   'an object of runtime entries, e.g. {"onnxruntime": {"artifact": "onnx"}}')
    text = _parse_text(where, meta.get("text"), inputs)
    return Package(dir=folder, meta=meta, name=name, version=str(version), inputs=inputs,
                   outputs=outputs, labels=labels, task=str(meta.get("task", "classification")),
                   runtime=str(meta.get("runtime", "onnxruntime")), artifacts=dict(artifacts),
                   allow_nonfinite=meta.get("allow_nonfinite") is True,
                   runtimes=dict(runtimes), text=text)


def _parse_text(where: Path, raw: Any, inputs: list[TensorSpec]) -> TextSpec | None:
    """The `text` section: max_length, tokenizer file, and one BYTES [-1] input to feed it."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad(where, "text", raw, '{"max_length": 128, "tokenizer": "tokenizer.json"}')
    length = raw.get("max_length")
    if not (isinstance(length, int) and not isinstance(length, bool) and length >= 2):
        raise _bad(where, "text.max_length", length, "an int >= 2 (tokens per text)")
    tokenizer = raw.get("tokenizer", "tokenizer.json")
    if not (isinstance(tokenizer, str) and tokenizer):
        raise _bad(where, "text.tokenizer", tokenizer, 'a file name such as "tokenizer.json"')
    names = raw.get("model_inputs", ["input_ids", "attention_mask"])
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise _bad(where, "text.model_inputs", names, '["input_ids", "attention_mask"]')
    if not (len(inputs) == 1 and inputs[0].datatype == "BYTES" and inputs[0].shape == (-1,)):
        raise _bad(where, "inputs", [s.describe() for s in inputs],
                   'one BYTES [-1] input for a text model, e.g. {"name": "text", "datatype": '
                   '"BYTES", "shape": [-1]}')
    return TextSpec(length, tokenizer, tuple(names))


def _parse_specs(where: Path, key: str, raw: Any) -> list[TensorSpec]:
    """Parse a list of {"name", "datatype", "shape"} objects, names unique."""
    if not (isinstance(raw, list) and raw):
        raise _bad(where, key, raw, 'a non-empty list of {"name", "datatype", "shape"}')
    specs: list[TensorSpec] = []
    for i, item in enumerate(raw):
        path = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, path, item, 'an object {"name", "datatype", "shape"}')
        name, dt, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not (isinstance(name, str) and name):
            raise _bad(where, f"{path}.name", name, "a non-empty string")
        if dt not in DATATYPES:
            raise _bad(where, f"{path}.datatype", dt, f"one of {', '.join(DATATYPES)}")
        if not (isinstance(shape, list) and all(_is_dim(d) for d in shape)):
            raise _bad(where, f"{path}.shape", shape, "a list of ints >= 0, or -1 for any size")
        specs.append(TensorSpec(name, dt, tuple(shape)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise _bad(where, key, names, "unique tensor names")
    return specs


def _parse_labels(where: Path, raw: Any, outputs: list[TensorSpec]) -> list[str] | None:
    """Label names (strings) or None; their count must match a fixed class dimension."""
    if raw is None:
        return None
    if not (isinstance(raw, list) and all(isinstance(x, (str, int)) for x in raw)):
        raise _bad(where, "labels", raw, "a list of label names (strings)")
    labels = [str(x) for x in raw]
    probs = next((s for s in outputs if s.name == "probabilities"), None)
    classes = probs.shape[-1] if probs is not None and probs.shape else -1
    if classes != -1 and classes != len(labels):
        raise _bad(where, "labels", f"{len(labels)} names", f"{classes} names, one per "
                   f"class of output 'probabilities' {list(probs.shape)}")
    return labels


def _is_dim(d: Any) -> bool:
    """True for a valid declared dimension: an int >= -1 (bool excluded)."""
    return isinstance(d, int) and not isinstance(d, bool) and d >= -1


def _bad(where: Path, key: str, got: Any, expected: str) -> DanluError:
    """A DanluError naming the file, the key, the bad value and the expectation."""
    text = repr(got)
    if len(text) > 120:
        text = text[:117] + "..."
    return DanluError(f"{where}: {key}: got {text}, expected {expected}")

