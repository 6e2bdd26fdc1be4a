"""danlu-model.json, the contract of a model package: one pydantic schema, written by one function
(`write_meta`) and validated when read (`read_meta`), by the export and compress stages, the
server, `danlu evaluate` and the report alike. pydantic only: importable without torch or numpy.

Schema 2 lists the package's features (name, type, what a client sends, the fitted state the
server's encoder needs), its raw columns (`columns`, the raw-row form) and its head; schema 1
documents (`format: danlu-model/1`, written before features existed) are read by upgrading them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from danlu.errors import DanluError

__all__ = ["DATATYPES", "MANIFEST", "SCHEMA_VERSION", "FeatureMeta", "HeadMeta", "PackageMeta",
           "RuntimeMeta", "TensorMeta", "read_meta", "write_meta"]

MANIFEST = "danlu-model.json"
SCHEMA_VERSION = 2
# Open Inference Protocol datatypes a package may declare.
DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BF16", "BYTES")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TensorMeta(_Strict):
    """One tensor: name, Open Inference Protocol datatype, shape (-1 = any size)."""

    name: str = Field(min_length=1)
    datatype: Literal[DATATYPES]  # type: ignore[valid-type]
    shape: list[int]

    @field_validator("shape")
    @classmethod
    def _dims(cls, v: list[int]) -> list[int]:
        if any(d < -1 for d in v):
            raise ValueError("a list of ints >= 0, or -1 for any size")
        return v


class FeatureMeta(_Strict):
    """A feature as danlu.features describes it, plus what the client sends and the graph takes."""

    name: str
    type: str
    columns: list[str] = []
    options: dict[str, Any] = {}
    state: dict[str, Any] = {}
    input: TensorMeta
    graph_inputs: list[TensorMeta]


class HeadMeta(_Strict):
    type: str
    column: str | None = None
    labels: list[str] = []
    options: dict[str, Any] = {}
    # Fitted state (a number head's target mean and std).
    state: dict[str, Any] = {}


class RuntimeMeta(BaseModel):
    """A runtime the package can be served with, and what export measured of it."""

    model_config = ConfigDict(extra="allow")

    artifact: str
    dtype: str = "float32"
    passed: bool = True
    reasons: list[str] = []
    # The runtime object's class and options when it was measured (danlu.serve.runtimes):
    # `danlu serve` builds the same.
    loaded: dict[str, Any] = {}


class PackageMeta(BaseModel):
    """danlu-model.json."""

    model_config = ConfigDict(extra="allow")  # metrics, parity, provenance, compression, ...

    schema_version: Literal[2] = SCHEMA_VERSION
    name: str = Field(pattern=r"^[^/:]+$")
    version: str = "1"
    task: str = "classification"
    features: list[FeatureMeta] = []
    head: HeadMeta | None = None
    inputs: list[TensorMeta] = Field(min_length=1)
    # The raw row: one tensor per column (a value per row; an image is one), what a client may
    # send instead of `inputs`, in the order of the array form (the source's). Empty: the
    # features' column inputs in feature order (danlu.features.column_inputs).
    columns: list[TensorMeta] = []
    outputs: list[TensorMeta] = Field(min_length=1)
    labels: list[str] | None = None
    runtime: str = "onnxruntime"
    runtimes: dict[str, RuntimeMeta] = {}
    artifacts: dict[str, str] = {}
    allow_nonfinite: bool = False

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if v == "":
            raise ValueError('a string such as "1"')
        return v

    @field_validator("inputs", "columns", "outputs")
    @classmethod
    def _unique(cls, v: list[TensorMeta]) -> list[TensorMeta]:
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError(f"unique tensor names, got {names}")
        return v

    @field_validator("labels")
    @classmethod
    def _labels_fit(cls, v: list[str] | None, info: Any) -> list[str] | None:
        probs = next((t for t in info.data.get("outputs") or [] if t.name == "probabilities"),
                     None)
        classes = probs.shape[-1] if probs is not None and probs.shape else -1
        if v is not None and classes != -1 and classes != len(v):
            raise ValueError(f"{classes} names, one per class of output 'probabilities' "
                             f"{probs.shape} (got {len(v)})")
        return v

    @model_validator(mode="after")
    def _inputs_are_the_features(self) -> PackageMeta:
        """What clients send is what the features take: `inputs` mirrors their `input`."""
        if self.features and [f.input for f in self.features] != self.inputs:
            raise ValueError(f"inputs to be the features' inputs "
                             f"{[f.input.model_dump() for f in self.features]}")
        return self

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def write_meta(folder: Path, meta: PackageMeta | dict[str, Any]) -> Path:
    """Validate and write `folder`/danlu-model.json (atomically)."""
    from danlu.runs import write_json

    if isinstance(meta, dict):
        meta = PackageMeta.model_validate({k: v for k, v in meta.items() if k != "format"})
    return write_json(Path(folder) / MANIFEST, meta.dump())


def read_meta(folder: Path) -> PackageMeta:
    """`folder`/danlu-model.json, upgraded to the current schema and validated; an error names
    the file, the key, the value and what was expected."""
    path = Path(folder) / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DanluError(f"{path}: cannot read it ({e})") from e
    except json.JSONDecodeError as e:
        raise DanluError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise DanluError(f"{path}: (top level): got {type(raw).__name__}, expected a JSON object")
    raw = upgrade(raw, path)
    try:
        return PackageMeta.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        got = repr(err.get("input"))
        got = got[:117] + "..." if len(got) > 120 else got
        msg = err["msg"].removeprefix("Value error, ")
        raise DanluError(f"{path}: {key or '(top level)'}: got {got}, expected {msg}") from None


def upgrade(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """A schema-1 document (`format: danlu-model/1`, no features) as schema 2: its inputs are
    the graph's own; a `text` section becomes a text feature with that tokenizer."""
    if "schema_version" in raw:
        return raw
    fmt = raw.get("format")
    if fmt != "danlu-model/1":
        raise DanluError(f"{path}: format: got {fmt!r}, expected 'danlu-model/1' or a "
                         f"schema_version ({SCHEMA_VERSION}: this danlu reads that schema)")
    raw = {k: v for k, v in raw.items() if k != "format"}
    text = raw.pop("text", None)
    if isinstance(text, dict) and isinstance(raw.get("inputs"), list) and raw["inputs"]:
        names = text.get("model_inputs", ["input_ids", "attention_mask"])
        raw["features"] = [{
            "name": raw["inputs"][0].get("name"), "type": "text",
            "state": {"tokenizer": text.get("tokenizer", "tokenizer.json"),
                      "max_length": text.get("max_length")},
            "input": raw["inputs"][0],
            "graph_inputs": [{"name": n, "datatype": "INT64", "shape": [-1, -1]} for n in names]}]
    raw["schema_version"] = SCHEMA_VERSION
    return raw
