"""The binary tensor data extension (Triton's, used by tritonclient.http by default).

Request: `Inference-Header-Content-Length: n`; the body is n bytes of JSON, then each binary
input's raw little-endian bytes in input order (an input's JSON has no "data" and says
"parameters": {"binary_data_size": bytes}). BYTES elements are a 4-byte little-endian length
then the bytes. BF16 is 2 bytes per element (the top half of an IEEE float32). The response
uses the same layout for outputs the client asked to get in binary.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from danlu.serve.package import DATATYPES
from danlu.serve.protocols.base import ProtocolError

__all__ = ["HEADER", "bf16_bytes", "decode_tensor", "encode_tensor", "split_body"]

HEADER = "inference-header-content-length"


def split_body(raw: bytes, header_length: str) -> tuple[bytes, memoryview]:
    """(JSON part, binary part) of a request whose header gives the JSON part's length."""
    if not header_length.isdigit():
        raise ProtocolError(400, f"Inference-Header-Content-Length: got {header_length!r}, "
                                 "expected the JSON part's length in bytes")
    n = int(header_length)
    if n > len(raw):
        raise ProtocolError(400, f"Inference-Header-Content-Length is {n} but the body has "
                                 f"only {len(raw)} bytes")
    return raw[:n], memoryview(raw)[n:]


def decode_tensor(buf: memoryview, datatype: str, shape: list[int], what: str) -> np.ndarray:
    """One input's bytes -> a flat numpy array of the sent datatype (values not yet checked)."""
    if datatype == "BYTES":
        return _decode_bytes(buf, what)
    if datatype == "BF16":
        if len(buf) % 2:
            raise ProtocolError(400, f"{what}: BF16 data must be 2 bytes per element, got "
                                     f"{len(buf)} bytes")
        # bf16 is the top 16 bits of a float32: widening is exact.
        return (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
    dtype = DATATYPES[datatype].newbyteorder("<")
    need = math.prod(shape) * dtype.itemsize
    if len(buf) != need:
        raise ProtocolError(400, f"{what}: binary_data_size is {len(buf)} bytes but shape "
                                 f"{shape} of {datatype} needs {need}")
    return np.frombuffer(buf, dtype)


def encode_tensor(arr: np.ndarray) -> bytes:
    """An output array's raw little-endian bytes (BYTES: length-prefixed elements)."""
    if arr.dtype.kind in "OUS":
        parts = []
        for v in arr.ravel().tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()


def bf16_bytes(arr: np.ndarray) -> bytes:
    """float32 -> bf16 bytes, rounded to nearest even (for clients that ask BF16 back)."""
    bits = np.ascontiguousarray(arr, np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def _decode_bytes(buf: memoryview, what: str) -> np.ndarray:
    """BYTES elements: each a 4-byte little-endian length, then that many bytes."""
    items, i, raw = [], 0, bytes(buf)
    while i < len(raw):
        if i + 4 > len(raw):
            raise ProtocolError(400, f"{what}: truncated BYTES element length at byte {i}")
        (n,) = struct.unpack_from("<I", raw, i)
        if i + 4 + n > len(raw):
            raise ProtocolError(400, f"{what}: BYTES element at byte {i} says {n} bytes but "
                                     f"only {len(raw) - i - 4} follow")
        try:
            items.append(raw[i + 4:i + 4 + n].decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ProtocolError(400, f"{what}: BYTES element {len(items)} is not valid UTF-8 "
                                     f"({e.reason} at byte {e.start}); send text as UTF-8") from e
        i += 4 + n
    return np.array(items, dtype=np.str_) if items else np.array([], dtype=np.str_)
