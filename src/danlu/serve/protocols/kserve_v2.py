"""Open Inference Protocol v2 (KServe, Triton): JSON tensors and the binary tensor extension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from danlu.serve.package import DATATYPES, Package, TensorSpec
from danlu.serve.protocols.base import (
    JSON_HEADERS,
    InferRequest,
    Protocol,
    ProtocolError,
    as_array,
    check_count,
    check_shape,
    column_from_array,
    column_from_json,
    datatype_of,
    dump_json,
    finish_tensor,
    json_values,
    parse_json,
    tensor_from_json,
)
from danlu.serve.protocols.binary import HEADER, decode_tensor, encode_tensor, split_body

__all__ = ["KServeV2", "decode_request", "encode_response", "model_metadata"]

# danlu-model.json `runtime` -> the platform name Triton/KServe clients know.
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "onnxruntime-int8": "onnxruntime_onnx",
             "torch": "pytorch_libtorch"}


def model_metadata(package: Package) -> dict[str, Any]:
    """GET /v2/models/{name}: name, versions, platform and the declared tensors (what clients
    send: raw values). A table's `inputs` are its raw row, one per column in column order
    (what a Triton-style client builds an input for each of); the per-feature inputs it also
    takes are `parameters.feature_inputs`. `parameters.features` says how the server encodes
    each feature."""
    inputs = package.columns if package.by_column else package.inputs
    meta = {"name": package.name, "versions": [package.version],
            "platform": PLATFORMS.get(package.runtime, package.runtime),
            "inputs": [s.to_json() for s in inputs],
            "outputs": [s.to_json() for s in package.outputs]}
    if package.features:
        meta["parameters"] = {"runtime": package.runtime,
                              "features": [f.form() for f in package.features]}
        if package.by_column:
            meta["parameters"]["feature_inputs"] = [s.to_json() for s in package.inputs]
    return meta


class _Binary:
    """The binary part of a request, consumed input by input in order."""

    def __init__(self, buf: memoryview | None):
        self.buf, self.offset = buf, 0

    def take(self, size: Any, what: str) -> memoryview:
        if self.buf is None:
            raise ProtocolError(400, f"{what}: binary_data_size given but the request has no "
                                     "Inference-Header-Content-Length header (no binary part)")
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0):
            raise ProtocolError(400, f"{what}: binary_data_size: got {size!r}, expected bytes")
        if self.offset + size > len(self.buf):
            raise ProtocolError(400, f"{what}: binary_data_size {size} runs past the end of the "
                                     f"body ({len(self.buf) - self.offset} bytes left)")
        part = self.buf[self.offset:self.offset + size]
        self.offset += size
        return part


def decode_request(body: Any, package: Package, binary: memoryview | None = None) -> InferRequest:
    """Check an inference request against `package` and turn its inputs into numpy arrays."""
    if not isinstance(body, dict):
        raise ProtocolError(400, 'expected a JSON object {"inputs": [...]}')
    rid = body.get("id")
    if rid is not None and not isinstance(rid, str):
        raise ProtocolError(400, f"id: got {rid!r}, expected a string")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError(400, f"parameters: got {params!r}, expected an object")
    raw = body.get("inputs")
    if not (isinstance(raw, list) and raw):
        raise ProtocolError(400, 'inputs: expected a non-empty list of {"name", "shape", '
                                 f'"datatype", "data"}}; the model takes {_expected(package)}')
    by_column = _by_column(raw, package)
    specs = {s.name: s for s in (package.columns if by_column else package.inputs)}
    tensors: dict[str, np.ndarray] = {}
    reader = _Binary(binary)
    for i, item in enumerate(raw):
        decode = _decode_column if by_column else _decode_input
        name, arr = decode(i, item, specs, package, reader)
        if name in tensors:
            raise ProtocolError(400, f"input {name!r} is given twice")
        tensors[name] = arr
    if binary is not None and reader.offset != len(binary):
        raise ProtocolError(400, f"the binary part has {len(binary)} bytes but the inputs' "
                                 f"binary_data_size add up to {reader.offset}")
    for spec in specs.values():
        if spec.name not in tensors:
            raise ProtocolError(400, f"missing input {spec.describe()}; the model takes "
                                     f"{_expected(package, by_column)}")
    if by_column:
        tensors = _assemble(tensors, package)
    empty = next((n for n, a in tensors.items() if a.size == 0), None)
    if package.features and empty is not None:
        raise ProtocolError(400, f"input {empty!r}: no rows; send at least one, e.g. "
                                 '"data": ["some text"], "shape": [1]')
    outputs, binary_outputs = _requested_outputs(body.get("outputs"), package,
                                                 params.get("binary_data_output") is True)
    return InferRequest(tensors, outputs, rid, "kserve_v2", binary_outputs)


def encode_response(request: InferRequest, outputs: dict[str, np.ndarray],
                    package: Package) -> dict[str, Any]:
    """The inference response: flat row-major `data` with `shape` and `datatype` per output."""
    resp: dict[str, Any] = {"model_name": package.name, "model_version": package.version}
    if request.id is not None:
        resp["id"] = request.id
    if request.truncated is not None:
        resp["parameters"] = {"truncated": request.truncated}
    resp["outputs"] = [{"name": name, "datatype": datatype_of(arr), "shape": list(arr.shape),
                        "data": json_values(arr)} for name, arr in outputs.items()]
    return resp


def encode_binary(request: InferRequest, outputs: dict[str, np.ndarray],
                  package: Package) -> tuple[bytes, dict[str, str]]:
    """JSON header + raw bytes for the outputs asked for in binary, as tritonclient reads it."""
    resp: dict[str, Any] = {"model_name": package.name, "model_version": package.version}
    if request.id is not None:
        resp["id"] = request.id
    if request.truncated is not None:
        resp["parameters"] = {"truncated": request.truncated}
    entries, blobs = [], []
    for name, arr in outputs.items():
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(arr),
                                 "shape": list(arr.shape)}
        if name in request.binary_outputs:
            blob = encode_tensor(arr)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = json_values(arr)
        entries.append(entry)
    resp["outputs"] = entries
    head = dump_json(resp)
    return b"".join([head, *blobs]), {"content-type": "application/octet-stream",
                                      "inference-header-content-length": str(len(head))}


class KServeV2(Protocol):
    """POST /v2/models/{name}/infer."""

    name = "kserve_v2"

    def decode(self, body: Any, package: Package) -> InferRequest:
        """See decode_request."""
        return decode_request(body, package)

    def encode(self, request: InferRequest, outputs: dict[str, np.ndarray],
               package: Package) -> dict[str, Any]:
        """See encode_response."""
        return encode_response(request, outputs, package)

    def decode_body(self, raw: bytes, headers: Mapping[str, str], package: Package) -> InferRequest:
        """JSON, or JSON + binary tensors when Inference-Header-Content-Length is present."""
        length = headers.get(HEADER)
        if length is None:
            return decode_request(parse_json(raw), package)
        head, binary = split_body(raw, length.strip())
        return decode_request(parse_json(head), package, binary)

    def encode_body(self, request: InferRequest, outputs: dict[str, np.ndarray],
                    package: Package) -> tuple[bytes, dict[str, str]]:
        """Plain JSON unless some output was asked for in binary."""
        if request.binary_outputs & outputs.keys():
            return encode_binary(request, outputs, package)
        return dump_json(encode_response(request, outputs, package)), JSON_HEADERS


def _decode_input(i: int, item: Any, specs: dict[str, TensorSpec], package: Package,
                  binary: _Binary) -> tuple[str, np.ndarray]:
    """One entry of `inputs`: its name and the converted array (JSON data or binary bytes)."""
    if not isinstance(item, dict):
        raise ProtocolError(400, f'inputs[{i}]: expected an object {{"name", "shape", '
                                 f'"datatype", "data"}}, got {type(item).__name__}')
    name = item.get("name")
    spec = specs.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ProtocolError(400, f"inputs[{i}]: unknown input {name!r}; the model takes "
                                 f"{_expected(package)}")
    what = f"input {name!r}"
    shape, datatype = item.get("shape"), item.get("datatype")
    if not (isinstance(shape, list) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ProtocolError(400, f"{what}: shape: got {shape!r}, expected a list of "
                                 f"non-negative ints like {_example_shape(spec)}")
    if datatype not in DATATYPES:
        raise ProtocolError(400, f"{what}: datatype: got {datatype!r}, expected one of "
                                 f"{', '.join(DATATYPES)} (the model takes {spec.datatype})")
    allow = package.allow_nonfinite
    if "data" in item:
        return name, tensor_from_json(item["data"], shape, datatype, spec, what, allow)
    params = item.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is None:
        raise ProtocolError(400, f"{what}: no data; send the values as \"data\" (flat or "
                                 "nested) or as binary tensor data (binary_data_size)")
    check_shape(shape, spec, what)  # shape before bytes, so a wrong rank is named as such
    arr = decode_tensor(binary.take(size, what), datatype, shape, what)
    return name, finish_tensor(arr, shape, datatype, spec, what, allow)


def _by_column(raw: list[Any], package: Package) -> bool:
    """Whether the request sends the raw row (one input per column, danlu-model.json
    `columns`) rather than the features' inputs: its names are columns, not all inputs."""
    names = [item.get("name") if isinstance(item, dict) else None for item in raw]
    inputs, cols = {s.name for s in package.inputs}, {s.name for s in package.columns}
    if not package.by_column or set(names) <= inputs:
        return False
    if set(names) <= cols:
        return True
    both = f"{_expected(package, True)} (or the inputs {_expected(package)})"
    i, name = next(((i, n) for i, n in enumerate(names) if n not in inputs | cols),
                   (None, None))
    if i is None:
        raise ProtocolError(400, f"the inputs {names} mix raw columns and feature inputs; the "
                                 f"model takes {both}")
    if not isinstance(raw[i], dict):
        raise ProtocolError(400, f'inputs[{i}]: expected an object {{"name", "shape", '
                                 f'"datatype", "data"}}, got {type(raw[i]).__name__}')
    raise ProtocolError(400, f"inputs[{i}]: unknown input {name!r}; the model takes {both}")


def _decode_column(i: int, item: Any, specs: dict[str, TensorSpec], package: Package,
                   binary: _Binary) -> tuple[str, np.ndarray]:
    """One column of the raw row: a value per row (shape [n] or [n, 1]), numbers as any
    INT*/UINT*/FP* (NaN or null = missing), strings as BYTES (null = missing)."""
    name = item["name"]
    spec, what = specs[name], f"input {name!r}"
    if len(spec.shape) != 1:  # an image: the whole input as one column
        return _decode_input(i, item, {name: spec}, package, binary)
    shape, datatype = item.get("shape"), item.get("datatype")
    if not (isinstance(shape, list) and len(shape) in (1, 2) and shape[1:] in ([], [1]) and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ProtocolError(400, f"{what}: shape: got {shape!r}, expected [rows] (or [rows, 1]):"
                                 " one value per row of this column")
    number = spec.datatype != "BYTES"
    if datatype not in DATATYPES or datatype == "BOOL" or (number and datatype == "BYTES"):
        raise ProtocolError(400, f"{what}: datatype: got {datatype!r}, expected "
                                 f"{'FP32, FP64 or INT64 (NaN for a missing value)' if number else 'BYTES'}"
                                 f" for this {'number' if number else 'string'} column")
    allow = package.allow_nonfinite
    if "data" in item:
        arr = as_array(item["data"], what)
        check_count(arr, shape, what)
        return name, column_from_json(arr.ravel().tolist(), spec, what, allow)
    params = item.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is None:
        raise ProtocolError(400, f"{what}: no data; send the values as \"data\" or as binary "
                                 "tensor data (binary_data_size)")
    arr = decode_tensor(binary.take(size, what), datatype, shape, what)
    return name, column_from_array(arr, spec, what, allow)


def _assemble(columns: dict[str, np.ndarray], package: Package) -> dict[str, np.ndarray]:
    """The columns (all the same number of rows) -> the features' inputs."""
    rows = {len(a) for a in columns.values()}
    if len(rows) > 1:
        raise ProtocolError(400, "the columns have different numbers of rows: "
                                 + ", ".join(f"{k}: {len(a)}" for k, a in columns.items()))
    return package.assemble(columns)


def _requested_outputs(raw: Any, package: Package,
                       binary_all: bool) -> tuple[list[str] | None, frozenset[str]]:
    """Output names asked for (None = all) and those wanted as binary tensor data."""
    declared = [s.name for s in package.outputs]
    if raw is None or raw == []:
        return None, frozenset(declared if binary_all else ())
    if not isinstance(raw, list):
        raise ProtocolError(400, f'outputs: expected a list like [{{"name": "{declared[0]}"}}]')
    names: list[str] = []
    binary: set[str] = set()
    for j, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise ProtocolError(400, f'outputs[{j}]: expected {{"name": ...}}, got {item!r}')
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise ProtocolError(400, f"outputs[{j}].parameters: got {params!r}, expected an "
                                     "object")
        if params.get("classification"):
            raise ProtocolError(400, "the classification extension is not supported; "
                                     "ask for the 'label' and 'probabilities' outputs")
        if name not in declared:
            raise ProtocolError(400, f"outputs[{j}]: unknown output {name!r}; the model has "
                                     f"{', '.join(declared)}")
        if params.get("binary_data", binary_all) is True:
            binary.add(name)
        if name not in names:
            names.append(name)
    return names, frozenset(binary)


def _expected(package: Package, by_column: bool = False) -> str:
    """The declared inputs, for messages: "pixels (FP32 [-1, 64])"; for a request by column,
    the columns."""
    if by_column:
        return "one input per column: " + ", ".join(s.describe() for s in package.columns)
    return ", ".join(s.describe() for s in package.inputs)


def _example_shape(spec: TensorSpec) -> list[int]:
    """A concrete shape a client could send: -1 dims become 1."""
    return [1 if d == -1 else d for d in spec.shape]
