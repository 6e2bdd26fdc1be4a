"""`danlu.serve.Client`: a small KServe v2 client over httpx, with retries and clear errors.

    with Client("http://127.0.0.1:8080") as c:
        out = c.infer("digits", {"pixels": x})      # numpy in, {"label": ..., ...} numpy out
        out["label"]
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import numpy as np

from danlu.errors import DanluError
from danlu.serve.protocols.binary import decode_tensor, encode_tensor

__all__ = ["Client", "ServerError"]

_DATATYPES = {"b": None, "f2": "FP16", "f4": "FP32", "f8": "FP64", "i1": "INT8", "i2": "INT16",
              "i4": "INT32", "i8": "INT64", "u1": "UINT8", "u2": "UINT16", "u4": "UINT32",
              "u8": "UINT64"}
# Worth another try: the server said "back off" (429, 503) or the gateway timed out (502).
_RETRY_STATUS = frozenset({429, 502, 503})


class ServerError(DanluError):
    """The server answered with an error: `status` and the server's own `message`."""

    def __init__(self, status: int, message: str, url: str = ""):
        super().__init__(f"{status} from {url}: {message}" if url else f"{status}: {message}")
        self.status, self.message = status, message


class Client:
    """KServe v2 over HTTP; binary tensors both ways; retries on 429/502/503 and lost connections."""

    def __init__(self, url: str = "http://127.0.0.1:8080", *, token: str | None = None,
                 timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.2):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers)
        self.retries, self.backoff_s = retries, backoff_s

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def live(self) -> bool:
        return self._send("GET", "/v2/health/live", ok_only=False).status_code == 200

    def ready(self) -> bool:
        return self._send("GET", "/v2/health/ready", ok_only=False).status_code == 200

    def metadata(self, model: str | None = None) -> dict[str, Any]:
        """Server metadata, or a model's (inputs, outputs, versions)."""
        return self._send("GET", f"/v2/models/{model}" if model else "/v2").json()

    def infer(self, model: str, inputs: dict[str, np.ndarray] | np.ndarray, *,
              outputs: list[str] | None = None, version: str | None = None,
              request_id: str | None = None, binary: bool = True) -> dict[str, np.ndarray]:
        """Run `model` on `inputs` (a dict by input name, or one array for a one-input model)."""
        if not isinstance(inputs, dict):  # the one per-feature input (a table: its matrix)
            meta = self.metadata(model)
            specs = (meta.get("parameters") or {}).get("feature_inputs") or meta["inputs"]
            inputs = {specs[0]["name"]: inputs}
        body: dict[str, Any] = {"inputs": []}
        blobs: list[bytes] = []
        for name, value in inputs.items():
            arr = np.asarray(value)
            entry: dict[str, Any] = {"name": name, "shape": list(arr.shape),
                                     "datatype": _datatype(arr)}
            if binary:
                blob = encode_tensor(arr)
                entry["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            else:
                entry["data"] = arr.ravel().tolist()
            body["inputs"].append(entry)
        if request_id is not None:
            body["id"] = request_id
        if outputs is not None:
            body["outputs"] = [{"name": n, "parameters": {"binary_data": binary}} for n in outputs]
        elif binary:
            body["parameters"] = {"binary_data_output": True}
        head = json.dumps(body).encode()
        headers = {"Inference-Header-Content-Length": str(len(head))} if binary else {}
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        resp = self._send("POST", path, content=b"".join([head, *blobs]), headers=headers)
        return _decode_response(resp)

    def _send(self, method: str, path: str, ok_only: bool = True, **kw: Any) -> httpx.Response:
        """One request with retries; a final error status raises ServerError with its message."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                resp = self.http.request(method, path, **kw)
            except httpx.TransportError:
                if last:
                    raise
                time.sleep(self.backoff_s * 2 ** attempt)
                continue
            if resp.status_code in _RETRY_STATUS and not last:
                time.sleep(_retry_after(resp, self.backoff_s * 2 ** attempt))
                continue
            if ok_only and resp.status_code != 200:
                raise ServerError(resp.status_code, _message(resp), str(resp.url))
            return resp
        raise AssertionError("unreachable")


def _datatype(arr: np.ndarray) -> str:
    if arr.dtype == np.bool_:
        return "BOOL"
    if arr.dtype.kind in "OUS":
        return "BYTES"
    key = f"{arr.dtype.kind}{arr.dtype.itemsize}"
    if _DATATYPES.get(key) is None:
        raise DanluError(f"cannot send a {arr.dtype} array; use a numeric, bool or str array")
    return _DATATYPES[key]


def _retry_after(resp: httpx.Response, default: float) -> float:
    value = resp.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.replace(".", "", 1).isdigit() else default


def _message(resp: httpx.Response) -> str:
    """The server's {"error": ...} text, or the raw body when it is not that shape."""
    try:
        return str(resp.json()["error"])
    except (ValueError, KeyError, TypeError):
        return resp.text[:500] or resp.reason_phrase


def _decode_response(resp: httpx.Response) -> dict[str, np.ndarray]:
    """JSON or JSON + binary outputs -> numpy arrays by output name."""
    length = resp.headers.get("inference-header-content-length")
    raw = resp.content
    head = json.loads(raw[:int(length)] if length else raw)
    buf, offset, out = memoryview(raw)[int(length or 0):], 0, {}
    for o in head["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arr = np.asarray(o["data"])
            if o["datatype"] == "BYTES":
                arr = arr.astype(object)
        else:
            arr = decode_tensor(buf[offset:offset + size], o["datatype"], o["shape"], o["name"])
            offset += size
        out[o["name"]] = arr.reshape(o["shape"])
    return out
