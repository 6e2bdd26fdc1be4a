"""The FastAPI app in-process, on the digits package danlu wrote: error mapping that needs routes
the real server lacks, serve()."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

from danlu.errors import DanluError
from danlu.serve import ServeConfig, create_app, load_package, serve

from .conftest import SRC, digits_body


def _request(app: FastAPI, method: str, path: str, **kwargs) -> httpx.Response:
    """One request through the real ASGI stack, without a socket."""
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.request(method, path, **kwargs)
    return anyio.run(go)


@pytest.fixture(scope="module")
def app(digits_package: Path) -> FastAPI:
    app = create_app([load_package(digits_package)])  # Package objects work as well as paths

    @app.get("/test/typed/{n}")
    async def typed(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    return app


def test_fastapi_validation_errors_become_400_json(app: FastAPI) -> None:
    resp = _request(app, "GET", "/test/typed/abc")
    assert resp.status_code == 400 and "n" in resp.json()["error"]


def test_unhandled_exceptions_become_500_json(app: FastAPI) -> None:
    resp = _request(app, "GET", "/test/boom")
    assert resp.status_code == 500 and "kaboom" in resp.json()["error"]
    assert _request(app, "GET", "/v2/health/live").json() == {"live": True}


def test_infer_in_process(app: FastAPI, digits_eval) -> None:
    body = digits_body(digits_eval.values["pixels"][:3])
    resp = _request(app, "POST", "/v2/models/digits/infer", json=body)
    assert resp.status_code == 200
    assert resp.json()["outputs"][1]["data"] == digits_eval.labels[:3].tolist()


def test_duplicate_model_names_are_refused(digits_run) -> None:
    with pytest.raises(DanluError, match="named 'digits'.*unique"):
        create_app([digits_run.package_dir, digits_run.run_dir])


def test_nothing_to_serve_is_refused() -> None:
    with pytest.raises(DanluError, match="at least one"):
        create_app([])


def test_serve_on_a_busy_port_says_so(digits_package: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DanluError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve([digits_package], ServeConfig(port=port))


def test_module_entry_point_reports_a_bad_path(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "danlu.serve", str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(SRC), "PATH": ""})
    # `danlu serve`'s exit codes: 1 = a danlu error other than a recipe or data error.
    assert proc.returncode == 1 and "danlu-model.json" in proc.stderr


def test_openapi_lists_the_endpoints(app: FastAPI) -> None:
    paths = _request(app, "GET", "/openapi.json").json()["paths"]
    assert {"/v2/models/{name}/infer", "/v1/models/{target}", "/v2/health/ready"} <= set(paths)
    assert _request(app, "GET", "/docs").status_code == 200
