"""TF-Serving-style predict: {"instances": [...]} rows or {"inputs": {...}} columns, JSON in/out.

A table package also takes its raw rows (danlu-model.json `columns`): objects by column name
({"cut": "Ideal", "carat": 0.3, "depth": null}) or arrays in column order, assembled into the
features' inputs by `Package.assemble`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from danlu.serve.package import Package, TensorSpec
from danlu.serve.protocols.base import (
    InferRequest,
    Protocol,
    ProtocolError,
    as_array,
    check_finite,
    check_shape,
    check_strings,
    column_from_json,
    convert,
)

__all__ = ["TFServingV1", "decode_request", "encode_response", "label_names"]

_FORMS = ('expected {"instances": [row, ...]} (one entry per row) or '
          '{"inputs": {"<input name>": [row, ...]}}')


def decode_request(body: Any, package: Package) -> InferRequest:
    """Turn a predict body, row form or column form, into input arrays for `package`."""
    if not isinstance(body, dict):
        raise ProtocolError(400, _FORMS)
    if "instances" in body and "inputs" in body:
        raise ProtocolError(400, 'send either "instances" (rows) or "inputs" (columns), not both')
    if "instances" in body:
        return InferRequest(_decode_instances(body["instances"], package), form="instances")
    if "inputs" in body:
        return InferRequest(_decode_columns(body["inputs"], package), form="inputs")
    raise ProtocolError(400, _FORMS)


def encode_response(request: InferRequest, outputs: dict[str, np.ndarray],
                    package: Package) -> dict[str, Any]:
    """{"predictions": [...]} for rows, {"outputs": {name: nested list}} for columns; text
    models add "truncated": [rows cut to max_length]."""
    body = _encode(request, outputs, package)
    if request.truncated is not None:
        body["truncated"] = request.truncated
    return body


def _encode(request: InferRequest, outputs: dict[str, np.ndarray],
            package: Package) -> dict[str, Any]:
    """The predict body without the text extras."""
    if request.form == "inputs":
        return {"outputs": {name: arr.tolist() for name, arr in outputs.items()}}
    head = package.head
    if head is not None and {s["name"] for s in head.outputs()} <= outputs.keys():
        return {"predictions": head.rows(outputs)}  # the head writes its rows (label, value)
    if package.task == "classification" and {"probabilities", "label"} <= outputs.keys():
        return {"predictions": _classifications(outputs["probabilities"], outputs["label"],
                                                package)}
    rows = {name: arr.tolist() for name, arr in outputs.items()}
    n = len(next(iter(rows.values())))
    if len(rows) == 1:  # as TF-Serving: a single output's rows are given bare
        return {"predictions": next(iter(rows.values()))}
    return {"predictions": [{name: vals[i] for name, vals in rows.items()} for i in range(n)]}


def label_names(package: Package, num_classes: int) -> list[str]:
    """The package's labels, or the class indices as strings when it declares none."""
    return package.labels or [str(j) for j in range(num_classes)]


class TFServingV1(Protocol):
    """POST /v1/models/{name}:predict."""

    name = "tfserving_v1"

    def decode(self, body: Any, package: Package) -> InferRequest:
        """See decode_request."""
        return decode_request(body, package)

    def encode(self, request: InferRequest, outputs: dict[str, np.ndarray],
               package: Package) -> dict[str, Any]:
        """See encode_response."""
        return encode_response(request, outputs, package)


def _classifications(probs: np.ndarray, labels: np.ndarray, package: Package) -> list[dict]:
    """Per row: the label name, its index and a {label name: probability} dict."""
    names = label_names(package, probs.shape[-1])
    out = []
    for p, idx in zip(probs.tolist(), labels.reshape(-1).tolist(), strict=True):
        out.append({"label": names[idx] if 0 <= idx < len(names) else str(idx),
                    "label_index": idx, "probabilities": dict(zip(names, p, strict=False))})
    return out


def _decode_instances(instances: Any, package: Package) -> dict[str, np.ndarray]:
    """Row form: a list of rows, or of objects. An object is a raw row by column name (a
    missing key a missing value) or, as before, {input name: row} with every input; a row of a
    table is its columns' values in column order, else the one input's row."""
    if not (isinstance(instances, list) and instances):
        raise ProtocolError(400, "instances: expected a non-empty list, one entry per row")
    if all(isinstance(x, dict) for x in instances):
        if _form(set().union(*instances), instances, package) == "columns":
            return _raw_columns(instances, package)
        return {s.name: _rows_to_tensor(_column(instances, s, package), s, f"input {s.name!r}",
                                    package.allow_nonfinite)
                for s in package.inputs}
    if any(isinstance(x, dict) for x in instances):
        raise ProtocolError(400, "instances: mix of objects and plain rows; use one form")
    if _table(package) and all(isinstance(x, list) for x in instances):
        return _column_order(instances, package)
    if len(package.inputs) != 1:
        names = ", ".join(f'"{s.name}": ...' for s in package.inputs)
        raise ProtocolError(400, f"this model takes {len(package.inputs)} inputs: send each "
                                 f"instance as an object {{{names}}}")
    spec = package.inputs[0]
    return {spec.name: _rows_to_tensor(instances, spec, "instances", package.allow_nonfinite)}


def _decode_columns(columns: Any, package: Package) -> dict[str, np.ndarray]:
    """Column form: {input name: rows}, {raw column name: values} (a missing column is missing
    in every row), or bare rows for a single-input model."""
    if isinstance(columns, list) and len(package.inputs) == 1:
        spec = package.inputs[0]
        return {spec.name: _rows_to_tensor(columns, spec, f"input {spec.name!r}",
                                           package.allow_nonfinite)}
    if not isinstance(columns, dict):
        raise ProtocolError(400, f"inputs: expected an object {{input name: rows}} with "
                                 f"{_names(package)}")
    if columns and _form(set(columns), [columns], package) == "columns":
        lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in columns.items()}
        n = next(iter(lengths.values()))
        bad = next((k for k, m in lengths.items() if m != n or m < 1), None)
        if bad is not None:
            raise ProtocolError(400, f"inputs: column {bad!r}: expected a non-empty list of "
                                     f"values, one per row, as long as the others ({n})")
        rows = [{k: v[i] for k, v in columns.items()} for i in range(n)]
        return _raw_columns(rows, package)
    unknown = [k for k in columns if k not in {s.name for s in package.inputs}]
    if unknown:
        raise ProtocolError(400, f"inputs: unknown input {unknown[0]!r}; the model takes "
                                 f"{_names(package)}")
    tensors = {}
    for spec in package.inputs:
        if spec.name not in columns:
            raise ProtocolError(400, f"inputs: missing input {spec.describe()}")
        tensors[spec.name] = _rows_to_tensor(columns[spec.name], spec, f"input {spec.name!r}",
                                             package.allow_nonfinite)
    return tensors


def _column(instances: list[dict], spec: TensorSpec, package: Package) -> list[Any]:
    """One input's values across object instances; a missing or unknown key is a 400."""
    known = {s.name for s in package.inputs}
    for i, inst in enumerate(instances):
        extra = [k for k in inst if k not in known]
        if extra:
            raise ProtocolError(400, f"instances[{i}]: unknown input {extra[0]!r}; the model "
                                     f"takes {_names(package)}")
        if spec.name not in inst:
            raise ProtocolError(400, f"instances[{i}]: missing input {spec.describe()}")
    return [inst[spec.name] for inst in instances]


# ---- the raw-row form: values by column (danlu-model.json `columns`) ----------------------

def _table(package: Package) -> bool:
    """Whether a row can be given as its columns' values in order: every column one value."""
    return package.by_column and all(len(s.shape) == 1 for s in package.columns)


def _form(keys: set[str], objects: list[dict], package: Package) -> str:
    """"inputs" when the objects give every input by name (the per-input form, as before),
    "columns" when their keys are raw column names, else the per-input form's own checks or a
    400 naming the first key that is neither."""
    inputs = {s.name for s in package.inputs}
    cols = {s.name for s in package.columns} if package.by_column else set()
    if keys <= inputs and all(inputs <= o.keys() for o in objects):
        return "inputs"
    if cols and keys <= cols:
        return "columns"
    if keys <= inputs or not cols:
        return "inputs"
    unknown = next((k for o in objects for k in o if k not in inputs | cols), None)
    if unknown is not None:
        raise ProtocolError(400, f"unknown column {unknown!r}; the model takes the columns "
                                 f"{_column_names(package)} (or its inputs {_names(package)})")
    raise ProtocolError(400, f"keys {sorted(keys)} mix raw columns ({_column_names(package)}) "
                             f"and inputs ({_names(package)}); send one form")


def _raw_columns(objects: list[dict], package: Package) -> dict[str, np.ndarray]:
    """Objects by column name (a missing key: a missing value) -> the features' inputs."""
    values = {}
    for spec in package.columns:
        cells = [o.get(spec.name) for o in objects]
        values[spec.name] = _raw_column(cells, spec, package)
    return package.assemble(values)


def _column_order(rows: list[list], package: Package) -> dict[str, np.ndarray]:
    """Rows of values in column order -> the features' inputs."""
    specs = package.columns
    for i, row in enumerate(rows):
        if len(row) != len(specs):
            raise ProtocolError(400, f"instances[{i}]: {len(row)} values, but a row in column "
                                     f"order has {len(specs)}: {_column_names(package)} (or send "
                                     "objects by column name)")
    return package.assemble({s.name: _raw_column([r[j] for r in rows], s, package)
                             for j, s in enumerate(specs)})


def _raw_column(cells: list[Any], spec: TensorSpec, package: Package) -> np.ndarray:
    """One column's values: a value per row (null = missing), else (an image) a row each."""
    what = f"column {spec.name!r}"
    if len(spec.shape) == 1:
        return column_from_json(cells, spec, what, package.allow_nonfinite)
    if any(c is None for c in cells):
        raise ProtocolError(400, f"{what}: missing in row {cells.index(None)}; send "
                                 f"{spec.describe()} in every row")
    return _rows_to_tensor(cells, spec, what, package.allow_nonfinite)


def _column_names(package: Package) -> str:
    return ", ".join(s.name for s in package.columns)


def _rows_to_tensor(rows: Any, spec: TensorSpec, what: str,
                    allow_nonfinite: bool = False) -> np.ndarray:
    """A list of rows (each flat or nested) as one batch array of `spec`'s shape and type."""
    if not (isinstance(rows, list) and rows):
        raise ProtocolError(400, f"{what}: expected a non-empty list, one entry per row")
    if spec.datatype == "BYTES":
        check_strings(rows, what)
    arr, n = as_array(rows, what), len(rows)
    per_row = spec.shape[1:]
    if spec.shape and all(d >= 0 for d in per_row):
        need = math.prod(per_row)
        if arr.size != n * need:
            raise ProtocolError(400, f"{what}: {n} rows of shape {list(per_row)} need "
                                     f"{n * need} values, got {arr.size}")
        arr = arr.reshape((n, *per_row))
    check_shape(arr.shape, spec, what)
    arr = convert(arr, spec.datatype, what)
    if not allow_nonfinite:
        check_finite(arr, what)
    return arr


def _names(package: Package) -> str:
    """The declared inputs, for messages."""
    return ", ".join(s.describe() for s in package.inputs)
