"""HTTP routes, one module per protocol: kserve.py (/v2), tfserving.py (/v1), ops.py."""

from __future__ import annotations

from danlu.serve.routes.common import Model
from danlu.serve.routes.kserve import EXTENSIONS, add_kserve_routes
from danlu.serve.routes.ops import add_error_handlers, add_operational_routes
from danlu.serve.routes.tfserving import add_tfserving_routes

__all__ = ["EXTENSIONS", "Model", "add_error_handlers", "add_kserve_routes",
           "add_operational_routes", "add_tfserving_routes"]
