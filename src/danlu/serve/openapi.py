"""Request-body schemas for /docs and /openapi.json.

The inference routes read the raw body themselves (tritonclient sends no Content-Type, and
binary tensor data is not JSON), so FastAPI cannot infer these: they are declared here, for
readers of /docs and for schemathesis, which fuzzes the server from this spec.
"""

from __future__ import annotations

from typing import Any

from danlu.serve.package import DATATYPES

__all__ = ["V1_PREDICT", "V2_INFER"]

_TENSOR = {"type": "object", "required": ["name", "shape", "datatype"], "properties": {
    "name": {"type": "string"},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    "datatype": {"type": "string", "enum": list(DATATYPES)},
    "data": {"type": "array", "description": "row-major values, flat or nested"},
    "parameters": {"type": "object", "description": '{"binary_data_size": bytes} for binary'}}}

V2_INFER: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"},
            "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}}}}},
    }}}}}}

V1_PREDICT: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "properties": {
        "instances": {"type": "array", "minItems": 1, "description":
                      "rows (row form); a table's rows may be objects by column name or "
                      "arrays in column order (null = missing)"},
        "inputs": {"description": "{input name: rows} or {column name: values} (column form)"}}}}}}}
