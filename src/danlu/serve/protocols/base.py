"""What every wire protocol shares: the error type, JSON parsing and tensor conversion rules."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from danlu.serve.package import DATATYPES, Package, TensorSpec

__all__ = ["InferRequest", "Protocol", "ProtocolError", "as_array", "check_count", "check_strings",
           "check_finite", "check_shape", "column_from_array", "column_from_json", "convert",
           "datatype_of", "dump_json", "finish_tensor", "json_values", "parse_json",
           "tensor_from_json"]

JSON_HEADERS = {"content-type": "application/json"}
FLOATS = frozenset({"FP16", "FP32", "FP64", "BF16"})
INTS = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"})
# What each kind of target accepts, said as the fix a client can apply.
_ACCEPTS = {"float": "send numbers (any INT*, UINT* or FP* datatype converts)",
            "int": "send integers (an INT* or UINT* datatype)",
            "BOOL": "send true/false as BOOL", "BYTES": "send strings as BYTES"}
# numpy dtype kind -> what the JSON values were, for messages.
_KINDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers",
          "U": "strings", "S": "strings", "O": "mixed values (null, objects or mixed types)"}


class ProtocolError(Exception):
    """A request the server refuses: HTTP `status` and a message saying what was expected."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class InferRequest:
    """A decoded request: input arrays by name, output names wanted (None = all), id, form,
    and which outputs go back as binary tensor data (KServe v2 only)."""

    inputs: dict[str, np.ndarray]
    outputs: list[str] | None = None
    id: str | None = None
    form: str = ""
    binary_outputs: frozenset[str] = frozenset()
    # Text models, filled after inference: rows (0-based) whose text was cut to max_length.
    truncated: list[int] | None = None


class Protocol(ABC):
    """A wire format: a parsed JSON body -> InferRequest, runtime outputs -> a JSON body."""

    name: str

    @abstractmethod
    def decode(self, body: Any, package: Package) -> InferRequest:
        """Validate `body` against `package`'s inputs; raise ProtocolError on a client mistake."""

    @abstractmethod
    def encode(self, request: InferRequest, outputs: dict[str, np.ndarray],
               package: Package) -> dict[str, Any]:
        """The JSON-ready response for `outputs` (numpy arrays by output name)."""

    def decode_body(self, raw: bytes, headers: Mapping[str, str], package: Package) -> InferRequest:
        """The raw HTTP body (any Content-Type) -> InferRequest; JSON unless overridden."""
        return self.decode(parse_json(raw), package)

    def encode_body(self, request: InferRequest, outputs: dict[str, np.ndarray],
                    package: Package) -> tuple[bytes, dict[str, str]]:
        """(body bytes, headers) for the HTTP response; JSON unless overridden."""
        return dump_json(self.encode(request, outputs, package)), JSON_HEADERS


def parse_json(body: bytes) -> Any:
    """Parse a raw request body; bare NaN/Infinity are accepted here and refused per tensor."""
    if not body.strip():
        raise ProtocolError(400, "empty request body; expected a JSON object")
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise ProtocolError(400, f"malformed JSON at line {e.lineno} column {e.colno}: "
                                 f"{e.msg}") from e
    except (ValueError, RecursionError) as e:  # not UTF-8/16/32, or absurdly deep nesting
        raise ProtocolError(400, f"malformed JSON: {e}") from e


def dump_json(obj: Any) -> bytes:
    """Compact JSON bytes; a NaN/inf output (the model's fault) raises ValueError -> 500."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def as_array(data: Any, what: str) -> np.ndarray:
    """np.asarray on the parsed JSON (flat or nested); ragged nesting is a 400."""
    try:
        return np.asarray(data)
    except (ValueError, TypeError) as e:
        raise ProtocolError(400, f"{what}: nested lists must be rectangular (all rows the "
                                 "same length) or flat") from e


def check_shape(shape: tuple[int, ...] | list[int], spec: TensorSpec, what: str) -> None:
    """The shape must have the declared rank and the declared size on every fixed dim."""
    ok = len(shape) == len(spec.shape) and all(
        d == -1 or d == s for d, s in zip(spec.shape, shape, strict=True))
    if not ok:
        raise ProtocolError(400, f"{what}: shape {list(shape)} does not match the model's "
                                 f"{list(spec.shape)} (-1 = any size)")


def check_count(arr: np.ndarray, shape: list[int], what: str) -> None:
    """The number of values sent must equal the product of the stated shape."""
    need = math.prod(shape)
    if arr.size != need:
        raise ProtocolError(400, f"{what}: data has {arr.size} elements but shape {shape} "
                                 f"needs {need}")


def check_finite(arr: np.ndarray, what: str) -> None:
    """Refuse NaN/Infinity: the model declares no non-finite inputs."""
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ProtocolError(400, f"{what}: contains NaN or Infinity; non-finite input is "
                                 "not allowed")


def convert(arr: np.ndarray, datatype: str, what: str, source: str | None = None) -> np.ndarray:
    """`arr` as `datatype` where the conversion is exact or standard, else a 400."""
    code, target = arr.dtype.kind, DATATYPES[datatype]
    source = source or f"JSON {_KINDS.get(code, arr.dtype.name)}"
    if arr.size == 0:  # np.asarray([]) is float64 whatever was meant: nothing to check
        return arr.astype(target)
    if datatype in FLOATS:
        if code not in "iuf":
            raise _refuse(what, source, datatype, "float")
        with np.errstate(over="ignore", invalid="ignore"):  # both are detected below, as 400s
            out = arr.astype(target)
            # An integer is exact in a float type iff it survives the round trip back.
            inexact = code in "iu" and (out.astype(arr.dtype) != arr).any()
        if code == "f" and (np.isinf(out) & np.isfinite(arr)).any():
            raise ProtocolError(400, f"{what}: values exceed the {datatype} range")
        if inexact:
            raise ProtocolError(400, f"{what}: integers too large to be exact in {datatype}")
        return out
    if datatype in INTS:
        if code not in "iu":  # floats -> ints would round: not exact, so refused
            raise _refuse(what, source, datatype, "int")
        info = np.iinfo(target)
        if arr.min() < info.min or arr.max() > info.max:
            raise ProtocolError(400, f"{what}: values outside the {datatype} range "
                                     f"[{info.min}, {info.max}]")
        return arr.astype(target)
    if datatype == "BOOL" and code == "b":
        return arr
    if datatype == "BYTES" and code in "US":
        return arr.astype(object)
    raise _refuse(what, source, datatype, datatype)


def check_strings(data: Any, what: str) -> None:
    """BYTES values in JSON must be strings: numpy would quietly turn [1, "a"] into text."""
    stack, i = [data], 0
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
            continue
        if not isinstance(item, str):
            raise ProtocolError(400, f"{what}: element {i} is {json.dumps(item)[:40]} "
                                     f"({type(item).__name__}); BYTES elements must be JSON "
                                     'strings, e.g. ["first text", "second text"]')
        i += 1


def tensor_from_json(data: Any, shape: list[int], datatype: str, spec: TensorSpec,
                     what: str, allow_nonfinite: bool = False) -> np.ndarray:
    """One KServe-style tensor (data, shape, datatype) checked and converted for `spec`."""
    check_shape(shape, spec, what)
    if datatype == "BYTES" and spec.datatype == "BYTES":
        check_strings(data, what)
    return finish_tensor(as_array(data, what), shape, datatype, spec, what, allow_nonfinite)


def finish_tensor(arr: np.ndarray, shape: list[int], datatype: str, spec: TensorSpec,
                  what: str, allow_nonfinite: bool = False) -> np.ndarray:
    """Values as sent (JSON or binary) -> counted, converted to `spec`, finite, shaped."""
    check_count(arr, shape, what)
    arr = convert(arr, datatype, what)
    if datatype != spec.datatype:
        arr = convert(arr, spec.datatype, what, source=datatype)
    if not allow_nonfinite:
        check_finite(arr, what)
    return arr.reshape(shape)


def column_from_json(cells: list[Any], spec: TensorSpec, what: str,
                     allow_nonfinite: bool = False) -> np.ndarray:
    """One raw column's JSON values, a value per row, as its feature takes them: a number
    column (FP*) float32 with NaN for a missing value (null, NaN, or a missing token such as
    "", "NA", "?" as in the training file) and numeric strings parsed; a string column (BYTES)
    objects, None where missing, numbers kept (a category keys 3 and "3" alike). Anything
    else is a 400 naming the column, the row and the value."""
    if spec.datatype == "BYTES":
        out = np.empty(len(cells), dtype=object)
        for i, v in enumerate(cells):
            if v is not None and (isinstance(v, (bool, dict, list)) or not
                                  isinstance(v, (str, int, float))):
                raise ProtocolError(400, f"{what}: row {i} is {_show(v)}; send a string (or a "
                                         "number, or null for a missing value)")
            out[i] = None if isinstance(v, float) and math.isnan(v) else v
        return out
    from danlu.data.features import MISSING_TOKENS

    out = np.empty(len(cells), dtype=np.float64)
    for i, v in enumerate(cells):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[i] = v
        elif isinstance(v, str) and v.strip().lower() in MISSING_TOKENS:
            out[i] = np.nan
        else:
            try:
                out[i] = float(v) if isinstance(v, str) else _not_a_number(v)
            except (ValueError, OverflowError):
                raise ProtocolError(400, f"{what}: row {i} is {_show(v)}, not a number; send "
                                         "a number, or null for a missing value") from None
    return _finite_or_missing(out, spec, what, allow_nonfinite)


def column_from_array(arr: np.ndarray, spec: TensorSpec, what: str,
                      allow_nonfinite: bool = False) -> np.ndarray:
    """One raw column sent as a typed tensor (KServe v2 binary data, or JSON data of numbers
    or strings) as `column_from_json` returns it: a number column takes any INT*, UINT* or FP*
    datatype (NaN = missing), a string column BYTES (or numbers, keyed as categories are)."""
    code = arr.dtype.kind
    if spec.datatype == "BYTES":
        if code in "US":
            return arr.astype(object)
        if code in "iuf":
            return column_from_json(arr.tolist(), spec, what)
        raise _refuse(what, f"JSON {_KINDS.get(code, arr.dtype.name)}", "BYTES", "BYTES")
    if code == "O":  # JSON data holding nulls: the cell by cell rules
        return column_from_json(arr.tolist(), spec, what, allow_nonfinite)
    if code not in "iuf":
        raise _refuse(what, f"{_KINDS.get(code, arr.dtype.name)}", spec.datatype, "float")
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float64)
    return _finite_or_missing(out, spec, what, allow_nonfinite)


def _finite_or_missing(values: np.ndarray, spec: TensorSpec, what: str,
                       allow_nonfinite: bool) -> np.ndarray:
    """float64 values of a number column -> the column's datatype; NaN stays (missing), an
    infinity is refused unless the package allows non-finite input."""
    if not allow_nonfinite and np.isinf(values).any():
        i = int(np.flatnonzero(np.isinf(values))[0])
        raise ProtocolError(400, f"{what}: row {i} is {values[i]}; send a finite number, or "
                                 "null for a missing value")
    with np.errstate(over="ignore"):
        out = values.astype(DATATYPES[spec.datatype])
    if (np.isinf(out) & np.isfinite(values)).any():
        raise ProtocolError(400, f"{what}: values exceed the {spec.datatype} range")
    return out


def _not_a_number(v: Any) -> float:
    raise ValueError(v)


def _show(v: Any) -> str:
    """A JSON value, short, for messages."""
    return json.dumps(v)[:40]


def datatype_of(arr: np.ndarray) -> str:
    """The Open Inference Protocol datatype of a numpy array (object/str -> BYTES)."""
    if arr.dtype.kind in "OUS":
        return "BYTES"
    return _BY_DTYPE[arr.dtype]


def json_values(arr: np.ndarray) -> list[Any]:
    """Row-major flat values, JSON-ready (bytes become text)."""
    values = arr.ravel().tolist()
    if arr.dtype.kind in "OS":
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    return values


def _refuse(what: str, source: str, datatype: str, family: str) -> ProtocolError:
    """The 400 for a conversion that is neither exact nor standard."""
    return ProtocolError(400, f"{what}: {source} cannot be converted to {datatype}; "
                              f"{_ACCEPTS[family]}")


_BY_DTYPE = {dt: name for name, dt in DATATYPES.items() if name not in ("BF16", "BYTES")}
