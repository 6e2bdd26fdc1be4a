"""Dynamic batching and the limits around it, against real server processes."""

from __future__ import annotations

import re
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import running_server
from .test_server import kserve_body, oracle, outputs_by_name


def metric(url: str, name: str, **labels: str) -> float:
    """One sample's value from GET /metrics (0 when absent)."""
    text = httpx.get(f"{url}/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # prometheus sorts
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(want)}\}})? (\S+)$" if want else \
        rf"^{re.escape(name)} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


# The slow request must run as one call (not split into max_batch_size chunks) to hold the slot.
ONE_BATCH = ("--max-batch-size", "8192")
SLOW_ROWS = 6000  # about 1.5 s of ONNX Runtime on one thread here


def wait_metric(url: str, name: str, value: float, timeout: float = 30.0, **labels: str) -> None:
    """Poll /metrics until the sample equals `value` (a state, not a sleep, under any load)."""
    deadline = time.monotonic() + timeout
    while metric(url, name, **labels) != value:
        assert time.monotonic() < deadline, f"{name}{labels} never reached {value}"
        time.sleep(0.02)


def slow_body(rows: int) -> dict:
    return {"inputs": [{"name": "x", "shape": [rows, 1], "datatype": "FP32",
                        "data": [0.5] * rows}]}


def test_concurrent_requests_are_batched_and_each_gets_its_rows(packages: dict) -> None:
    rows = np.random.default_rng(1).normal(2.5, 3.0, size=(24, 4)).astype(np.float32)
    probs, labels = oracle(packages["toy"], rows)
    with running_server([packages["toy"]], "--max-queue-delay-ms", "100",
                        "--max-batch-size", "8") as (url, _):
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(12) as pool:
            def one(i: int) -> dict:
                return outputs_by_name(client.post("/v2/models/toy/infer",
                                                   json=kserve_body(rows[i:i + 1])))
            got = list(pool.map(one, range(len(rows))))
        assert [g["label"]["data"] for g in got] == [[int(x)] for x in labels]
        np.testing.assert_allclose([g["probabilities"]["data"] for g in got], probs, rtol=1e-6)
        calls = metric(url, "danlu_batch_requests_count", model="toy")
        merged = metric(url, "danlu_batch_requests_sum", model="toy")
        assert merged == 24 and calls < 24  # several requests shared one ONNX Runtime call
        assert metric(url, "danlu_batch_size_bucket", model="toy", le="8.0") == calls


def test_request_over_max_batch_size_is_split_and_reassembled(packages: dict) -> None:
    rows = np.random.default_rng(2).normal(2.5, 3.0, size=(19, 4)).astype(np.float32)
    _, labels = oracle(packages["toy"], rows)
    with running_server([packages["toy"]], "--max-batch-size", "4") as (url, _):
        out = outputs_by_name(httpx.post(f"{url}/v2/models/toy/infer", json=kserve_body(rows)))
        assert out["label"]["data"] == labels.tolist() and out["label"]["shape"] == [19]
        assert metric(url, "danlu_batch_size_count", model="toy") == 5  # 4+4+4+4+3
        assert metric(url, "danlu_batch_size_bucket", model="toy", le="4.0") == 5


def test_batching_off_runs_each_request_alone(packages: dict) -> None:
    with running_server([packages["toy"]], "--no-batching", "--max-queue-delay-ms", "50") as \
            (url, _):
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: outputs_by_name(client.post(
                "/v2/models/toy/infer", json=kserve_body(np.ones((2, 4))))), range(12)))
        assert metric(url, "danlu_batch_requests_count", model="toy") == 12
        assert metric(url, "danlu_batch_requests_sum", model="toy") == 12


def _in_background(fn) -> tuple[threading.Thread, list]:
    """Run fn() in a thread; its result (or exception) lands in the returned list."""
    box: list = []

    def target() -> None:
        try:
            box.append(fn())
        except Exception as e:  # surfaced by the test's assertions
            box.append(e)
    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_full_queue_is_429_with_retry_after(slow_package: Path) -> None:
    with running_server([slow_package], "--inference-workers", "1", *ONE_BATCH,
                        "--max-queue-size", "1", "--threads", "1") as (url, _):
        busy, first = _in_background(lambda: httpx.post(f"{url}/v2/models/slow/infer",
                                                        json=slow_body(SLOW_ROWS), timeout=60))
        wait_metric(url, "danlu_running_batches", 1, model="slow")  # the slow batch runs
        queued, second = _in_background(lambda: httpx.post(f"{url}/v2/models/slow/infer",
                                                           json=slow_body(1), timeout=60))
        wait_metric(url, "danlu_queue_size", 1, model="slow")  # one waits: the queue is full
        resp = httpx.post(f"{url}/v2/models/slow/infer", json=slow_body(1), timeout=60)
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
        assert "max_queue_size" in resp.json()["error"]
        busy.join()
        queued.join()
        assert first[0].status_code == 200 and second[0].status_code == 200
        assert metric(url, "danlu_requests_total", model="slow", status="429") == 1


def test_request_timeout_is_504_and_the_queued_job_is_dropped(slow_package: Path) -> None:
    with running_server([slow_package], "--inference-workers", "1", *ONE_BATCH,
                        "--request-timeout", "0.3", "--threads", "1") as (url, _):
        busy, first = _in_background(lambda: httpx.post(f"{url}/v2/models/slow/infer",
                                                        json=slow_body(SLOW_ROWS), timeout=60))
        wait_metric(url, "danlu_running_batches", 1, model="slow")
        resp = httpx.post(f"{url}/v2/models/slow/infer", json=slow_body(3), timeout=60)
        assert resp.status_code == 504 and "request_timeout_s" in resp.json()["error"]
        busy.join()
        assert first[0].status_code == 504  # the slow one too: 1.5 s of work, 0.3 s allowed
        deadline = time.monotonic() + 20
        while metric(url, "danlu_batch_size_count", model="slow") < 1:  # the slow call ends
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        # Only the slow batch ever ran: the timed-out small request left the queue unexecuted.
        assert metric(url, "danlu_batch_size_count", model="slow") == 1
        assert metric(url, "danlu_requests_total", model="slow", status="504") == 2
        assert httpx.post(f"{url}/v2/models/slow/infer", json=slow_body(3)).status_code == 200


def test_client_disconnect_drops_its_queued_work(slow_package: Path) -> None:
    with running_server([slow_package], "--inference-workers", "1", *ONE_BATCH,
                        "--threads", "1") as (url, _):
        busy, _box = _in_background(lambda: httpx.post(f"{url}/v2/models/slow/infer",
                                                       json=slow_body(SLOW_ROWS), timeout=60))
        wait_metric(url, "danlu_running_batches", 1, model="slow")
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the socket
            httpx.post(f"{url}/v2/models/slow/infer", json=slow_body(5), timeout=0.3)
        busy.join()
        deadline = time.monotonic() + 5
        while metric(url, "danlu_requests_total", model="slow", status="499") < 1:
            assert time.monotonic() < deadline, "the disconnect was never noticed"
            time.sleep(0.05)
        assert metric(url, "danlu_batch_size_count", model="slow") == 1
        assert metric(url, "danlu_inflight_requests", model="slow") == 0


def test_body_over_the_limit_is_413(packages: dict) -> None:
    with running_server([packages["toy"]], "--max-body-bytes", "4096") as (url, _):
        big = kserve_body(np.ones((300, 4)))
        resp = httpx.post(f"{url}/v2/models/toy/infer", json=big)
        assert resp.status_code == 413 and "max_body_bytes" in resp.json()["error"]

        def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b" " * 1000
        resp = httpx.post(f"{url}/v2/models/toy/infer", content=chunks())
        assert resp.status_code == 413
        assert httpx.post(f"{url}/v2/models/toy/infer",
                          json=kserve_body(np.ones((2, 4)))).status_code == 200


def test_metrics_are_prometheus_text(server: str) -> None:
    httpx.post(f"{server}/v2/models/toy/infer", json=kserve_body(np.ones((3, 4))))
    httpx.post(f"{server}/v2/models/toy/infer", content=b"{")
    resp = httpx.get(f"{server}/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert metric(server, "danlu_requests_total", model="toy", status="200") >= 1
    assert metric(server, "danlu_requests_total", model="toy", status="400") >= 1
    for family in ("danlu_request_duration_seconds_count", "danlu_queue_duration_seconds_count",
                   "danlu_inference_duration_seconds_count", "danlu_batch_size_count"):
        assert metric(server, family, model="toy") >= 1, family
    assert "danlu_inflight_requests" in resp.text


def test_bearer_token_guards_models_but_not_health(packages: dict) -> None:
    with running_server([packages["toy"]], env={"DANLU_TOKEN": "s3cret"}) as (url, _):
        body = kserve_body(np.ones((1, 4)))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            resp = httpx.post(f"{url}/v2/models/toy/infer", json=body, headers=headers)
            assert resp.status_code == 401 and "Bearer" in resp.json()["error"]
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert httpx.get(f"{url}/v2/models/toy").status_code == 401
        assert httpx.post(f"{url}/v1/models/toy:predict", json={"instances": [[1, 2, 3, 4]]}
                          ).status_code == 401
        ok = httpx.post(f"{url}/v2/models/toy/infer", json=body,
                        headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        for open_path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/v2"):
            assert httpx.get(f"{url}{open_path}").status_code == 200, open_path


def test_sigterm_finishes_queued_requests_and_exits_0(slow_package: Path) -> None:
    with running_server([slow_package], "--inference-workers", "1", *ONE_BATCH,
                        "--threads", "1") as (url, proc):
        busy, first = _in_background(lambda: httpx.post(f"{url}/v2/models/slow/infer",
                                                        json=slow_body(SLOW_ROWS), timeout=60))
        wait_metric(url, "danlu_running_batches", 1, model="slow")
        queued, second = _in_background(lambda: httpx.post(f"{url}/v2/models/slow/infer",
                                                           json=slow_body(500), timeout=60))
        wait_metric(url, "danlu_queue_size", 1, model="slow")
        proc.send_signal(signal.SIGTERM)
        busy.join()
        queued.join()
        assert proc.wait(timeout=30) == 0
        assert first[0].status_code == 200 and second[0].status_code == 200
        with pytest.raises(httpx.ConnectError):  # stopped accepting
            httpx.get(f"{url}/v2/health/live")


def test_workers_serve_from_several_processes(packages: dict) -> None:
    psutil = pytest.importorskip("psutil")
    with running_server([packages["toy"]], "--workers", "2") as (url, proc):
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(10):
                outputs_by_name(client.post("/v2/models/toy/infer",
                                            json=kserve_body(np.ones((1, 4)))))
        deadline = time.monotonic() + 20
        while len(psutil.Process(proc.pid).children()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
