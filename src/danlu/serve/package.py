"""Load a model package folder (danlu-model.json + artifacts) and check its declared contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from danlu.errors import DanluError, RecipeError

__all__ = ["DATATYPES", "MANIFEST", "Package", "TensorSpec", "load_package"]

MANIFEST = "danlu-model.json"

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
    # The package's features, fitted (danlu.features): the server encodes what clients send
    # with them (a text's tokens, a category's index) before the runtime runs. Empty for a
    # schema-1 package: its inputs go to the graph as they are.
    features: list[Any] = field(default_factory=list)
    # The raw row (danlu-model.json `columns`, else the features' column inputs): one tensor
    # per column, the order of the array form. Empty for a schema-1 package.
    columns: list[TensorSpec] = field(default_factory=list)
    # The package's head (danlu.features.heads), fitted: how /v1 writes a row's outputs. None
    # for a schema-1 package.
    head: Any = None

    @property
    def model_inputs(self) -> list[TensorSpec]:
        """What the runtime itself takes: the features' graph inputs (else the inputs)."""
        if not self.features:
            return self.inputs
        return [TensorSpec(s["name"], s["datatype"], tuple(s["shape"]))
                for f in self.features for s in f.graph_inputs()]

    @property
    def by_column(self) -> bool:
        """Whether the raw-row form is a form of its own (a table: not just the inputs)."""
        return bool(self.columns) and self.columns != self.inputs

    def assemble(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The raw-row form -> the features' inputs: `columns` holds one array per column
        (`self.columns`, a value per row; NaN a missing number, None a missing string), each
        feature takes its own (`Feature.from_columns`: a table's numbers stacked into one
        matrix in its column order). Both protocols call this, and only this."""
        return {f.name: f.from_columns(columns) for f in self.features}

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
    from danlu.package import read_meta

    folder = resolve_package_dir(Path(path))
    meta = read_meta(folder)
    features = [_feature(i, f.model_dump(), folder) for i, f in enumerate(meta.features)]
    return Package(dir=folder, meta=meta.dump(), name=meta.name, version=meta.version,
                   columns=_columns(meta, features),
                   inputs=[_spec(t) for t in meta.inputs], outputs=[_spec(t) for t in meta.outputs],
                   labels=meta.labels, task=meta.task, runtime=meta.runtime,
                   artifacts=dict(meta.artifacts), allow_nonfinite=meta.allow_nonfinite,
                   runtimes={k: v.model_dump() for k, v in meta.runtimes.items()},
                   features=features, head=_head(meta, folder))


def _feature(i: int, described: dict[str, Any], folder: Path) -> Any:
    """Feature `i` of danlu-model.json, fitted, with its files (a tokenizer.json) present: a
    package that cannot encode its inputs fails here, at load, not on every request."""
    from danlu.features import features, load_features

    where = f"{folder / MANIFEST}: features[{i}]"
    try:
        features[described["type"]]
    except RecipeError as e:  # the registry names the types it has
        raise DanluError(f"{where}.type: got {e.got!r}, expected {e.expected}") from None
    try:
        (feature,) = load_features([described], folder)
    except (DanluError, KeyError, TypeError, ValueError) as e:
        raise DanluError(f"{where}.state: not what a {described.get('type')!r} feature writes "
                         f"({type(e).__name__}: {e}); re-export the package") from None
    missing = [Path(a).name for a in feature.assets() if not Path(a).is_file()]
    if missing:
        raise DanluError(f"{where} ({described.get('name')!r}) needs {', '.join(missing)} in "
                         "the package folder; it is missing")
    return feature


def _columns(meta: Any, features: list[Any]) -> list[TensorSpec]:
    """The raw row: the features' own column inputs (what they can assemble), in the order
    danlu-model.json `columns` lists them (else feature order)."""
    from danlu.features import column_inputs

    order = [t.name for t in meta.columns]
    return [TensorSpec(s["name"], s["datatype"], tuple(s["shape"]))
            for s in column_inputs(features, order)]
def _head(meta: Any, folder: Path) -> Any:
    """The package's head from danlu-model.json, or None (schema 1, or a head type this danlu
    does not have: its outputs are then given as they are)."""
    from danlu.features import heads, load_head

    if meta.head is None or meta.head.type not in heads:
        return None
    try:
        return load_head(meta.head.model_dump())
    except (KeyError, TypeError, ValueError) as e:
        raise DanluError(f"{folder / MANIFEST}: head.state: not what a {meta.head.type!r} head "
                         f"writes ({type(e).__name__}: {e}); re-export the package") from None


def _spec(t: Any) -> TensorSpec:
    return TensorSpec(t.name, t.datatype, tuple(t.shape))


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

