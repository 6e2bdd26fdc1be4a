"""Open Inference Protocol v2 (KServe, Triton) over JSON: request decoding, response encoding."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.serve.package import DATATYPES, Package, TensorSpec
from danlu.serve.protocols.base import (
    InferRequest,
    Protocol,
    ProtocolError,
    datatype_of,
    json_values,
    tensor_from_json,
)

__all__ = ["KServeV2", "decode_request", "encode_response", "model_metadata"]

# danlu-model.json `runtime` -> the platform name Triton/KServe clients know.
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "torch": "pytorch_libtorch"}
_BINARY = ("binary tensor data is not supported yet; send JSON tensors "
           "(tritonclient.http: InferInput.set_data_from_numpy(x, binary_data=False) and "
           "InferRequestedOutput(name, binary_data=False))")


def model_metadata(package: Package) -> dict[str, Any]:
    """GET /v2/models/{name}: name, versions, platform and the declared tensors."""
    return {"name": package.name, "versions": [package.version],
            "platform": PLATFORMS.get(package.runtime, package.runtime),
            "inputs": [s.to_json() for s in package.inputs],
            "outputs": [s.to_json() for s in package.outputs]}


def decode_request(body: Any, package: Package) -> InferRequest:
    """Check an inference request against `package` and turn its inputs into numpy arrays."""
    if not isinstance(body, dict):
        raise ProtocolError(400, 'expected a JSON object {"inputs": [...]}')
    rid = body.get("id")
    if rid is not None and not isinstance(rid, str):
        raise ProtocolError(400, f"id: got {rid!r}, expected a string")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError(400, f"parameters: got {params!r}, expected an object")
    if params.get("binary_data_output"):
        raise ProtocolError(501, _BINARY)
    raw = body.get("inputs")
    if not (isinstance(raw, list) and raw):
        raise ProtocolError(400, 'inputs: expected a non-empty list of {"name", "shape", '
                                 f'"datatype", "data"}}; the model takes {_expected(package)}')
    specs = {s.name: s for s in package.inputs}
    tensors: dict[str, np.ndarray] = {}
    for i, item in enumerate(raw):
        name, arr = _decode_input(i, item, specs, package)
        if name in tensors:
            raise ProtocolError(400, f"input {name!r} is given twice")
        tensors[name] = arr
    for spec in package.inputs:
        if spec.name not in tensors:
            raise ProtocolError(400, f"missing input {spec.describe()}; the model takes "
                                     f"{_expected(package)}")
    return InferRequest(tensors, _requested_outputs(body.get("outputs"), package), rid, "kserve_v2")


def encode_response(request: InferRequest, outputs: dict[str, np.ndarray],
                    package: Package) -> dict[str, Any]:
    """The inference response: flat row-major `data` with `shape` and `datatype` per output."""
    resp: dict[str, Any] = {"model_name": package.name, "model_version": package.version}
    if request.id is not None:
        resp["id"] = request.id
    resp["outputs"] = [{"name": name, "datatype": datatype_of(arr), "shape": list(arr.shape),
                        "data": json_values(arr)} for name, arr in outputs.items()]
    return resp


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


def _decode_input(i: int, item: Any, specs: dict[str, TensorSpec],
                  package: Package) -> tuple[str, np.ndarray]:
    """One entry of `inputs`: its name and the converted array."""
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
    if "data" not in item:
        if (item.get("parameters") or {}).get("binary_data_size") is not None:
            raise ProtocolError(501, _BINARY)
        raise ProtocolError(400, f"{what}: no data; send the values as \"data\" (flat or nested)")
    return name, tensor_from_json(item["data"], shape, datatype, spec, what)


def _requested_outputs(raw: Any, package: Package) -> list[str] | None:
    """Output names asked for, in order and without repeats; None when all are wanted."""
    if raw is None or raw == []:
        return None
    declared = [s.name for s in package.outputs]
    if not isinstance(raw, list):
        raise ProtocolError(400, f'outputs: expected a list like [{{"name": "{declared[0]}"}}]')
    names: list[str] = []
    for j, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise ProtocolError(400, f'outputs[{j}]: expected {{"name": ...}}, got {item!r}')
        params = item.get("parameters") or {}
        if isinstance(params, dict) and params.get("binary_data"):
            raise ProtocolError(501, _BINARY)
        if isinstance(params, dict) and params.get("classification"):
            raise ProtocolError(501, "the classification extension is not supported; "
                                     "ask for the 'label' and 'probabilities' outputs")
        if name not in declared:
            raise ProtocolError(400, f"outputs[{j}]: unknown output {name!r}; the model has "
                                     f"{', '.join(declared)}")
        if name not in names:
            names.append(name)
    return names


def _expected(package: Package) -> str:
    """The declared inputs, for messages: "pixels (FP32 [-1, 64])"."""
    return ", ".join(s.describe() for s in package.inputs)


def _example_shape(spec: TensorSpec) -> list[int]:
    """A concrete shape a client could send: -1 dims become 1."""
    return [1 if d == -1 else d for d in spec.shape]
