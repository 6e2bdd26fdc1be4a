"""Wire protocols: KServe v2 (Open Inference Protocol) and TF-Serving-style /v1 predict."""

from __future__ import annotations

from danlu.serve.protocols.base import InferRequest, Protocol, ProtocolError, parse_json
from danlu.serve.protocols.kserve_v2 import KServeV2
from danlu.serve.protocols.tfserving_v1 import TFServingV1

__all__ = ["InferRequest", "KServeV2", "Protocol", "ProtocolError", "TFServingV1", "parse_json"]
