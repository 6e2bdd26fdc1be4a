"""Optional bearer-token auth for the model endpoints; health, metrics, docs and / stay open."""

from __future__ import annotations

import hmac
import json
from typing import Any

__all__ = ["BearerAuth", "protected"]

_BODY = json.dumps({"error": "missing or wrong bearer token: send the header "
                             "'Authorization: Bearer <token>' (the server's --token / "
                             "DANLU_TOKEN)"}).encode()


def protected(path: str) -> bool:
    """Inference and model metadata need the token; probes and the docs do not."""
    return path.startswith(("/v2/models", "/v1/"))


class BearerAuth:
    """Pure ASGI middleware (no per-request task overhead); compares in constant time."""

    def __init__(self, app: Any, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and protected(scope["path"]):
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            # hmac.compare_digest: the time taken does not reveal how much of the token matched.
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_BODY)).encode()),
                    (b"www-authenticate", b'Bearer realm="danlu"')]})
                await send({"type": "http.response.body", "body": _BODY})
                return
        await self.app(scope, receive, send)
