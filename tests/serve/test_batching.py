"""Dynamic batching and the limits around it, against real server processes serving packages
that danlu wrote: digits for batching, the text package (`slow`) where a request must hold the
inference slot for a while."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from danlu.threads import share

from .conftest import (
    SLOW_TEXTS,
    Slow,
    digits_body,
    metric,
    outputs_by_name,
    probabilities,
    running_server,
    wait_metric,
)

ATOL = 1e-4  # float32 ONNX Runtime vs the float32 torch model evaluation ran
INFER = "/v2/models/digits/infer"


def test_concurrent_requests_are_batched_and_each_gets_its_rows(digits_package: Path,
                                                                digits_eval) -> None:
    rows, probs, labels = (digits_eval.values["pixels"][:24], digits_eval.probs[:24],
                           digits_eval.labels[:24])
    with running_server([digits_package], "--max-queue-delay-ms", "100",
                        "--max-batch-size", "8") as (url, _):
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(12) as pool:
            def one(i: int) -> dict:
                return outputs_by_name(client.post(INFER, json=digits_body(rows[i:i + 1])))
            got = list(pool.map(one, range(len(rows))))
        assert [g["label"]["data"] for g in got] == [[int(x)] for x in labels]
        np.testing.assert_allclose(np.concatenate([probabilities(g) for g in got]), probs,
                                   atol=ATOL)
        calls = metric(url, "danlu_batch_requests_count", model="digits")
        merged = metric(url, "danlu_batch_requests_sum", model="digits")
        assert merged == 24 and calls < 24  # several requests shared one ONNX Runtime call
        assert metric(url, "danlu_batch_size_bucket", model="digits", le="8.0") == calls


def test_request_over_max_batch_size_is_split_and_reassembled(digits_package: Path,
                                                              digits_eval) -> None:
    rows, labels = digits_eval.values["pixels"][30:49], digits_eval.labels[30:49]
    with running_server([digits_package], "--max-batch-size", "4") as (url, _):
        out = outputs_by_name(httpx.post(f"{url}{INFER}", json=digits_body(rows)))
        assert out["label"]["data"] == labels.tolist() and out["label"]["shape"] == [19]
        assert metric(url, "danlu_batch_size_count", model="digits") == 5  # 4+4+4+4+3
        assert metric(url, "danlu_batch_size_bucket", model="digits", le="4.0") == 5


def test_batching_off_runs_each_request_alone(digits_package: Path, digits_eval) -> None:
    rows = digits_eval.values["pixels"][:2]
    with running_server([digits_package], "--no-batching", "--max-queue-delay-ms", "50") as \
            (url, _):
        with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda i: outputs_by_name(client.post(
                INFER, json=digits_body(rows))), range(12)))
        assert metric(url, "danlu_batch_requests_count", model="digits") == 12
        assert metric(url, "danlu_batch_requests_sum", model="digits") == 12


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


def test_full_queue_is_429_with_retry_after(slow: Slow) -> None:
    with running_server([slow.package], *slow.args, "--max-queue-size", "1") as (url, _):
        busy, first = _in_background(lambda: httpx.post(slow.url(url), json=slow.body(SLOW_TEXTS),
                                                        timeout=120))
        wait_metric(url, "danlu_running_batches", 1, model=slow.name)  # the slow batch runs
        queued, second = _in_background(lambda: httpx.post(slow.url(url), json=slow.body(1),
                                                           timeout=120))
        wait_metric(url, "danlu_queue_size", 1, model=slow.name)  # one waits: the queue is full
        resp = httpx.post(slow.url(url), json=slow.body(1), timeout=60)
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
        assert "max_queue_size" in resp.json()["error"]
        busy.join()
        queued.join()
        assert first[0].status_code == 200 and second[0].status_code == 200
        assert metric(url, "danlu_requests_total", model=slow.name, status="429") == 1


def test_request_timeout_is_504_and_the_queued_job_is_dropped(slow: Slow) -> None:
    with running_server([slow.package], *slow.args, "--request-timeout", "0.3") as (url, _):
        busy, first = _in_background(lambda: httpx.post(slow.url(url), json=slow.body(SLOW_TEXTS),
                                                        timeout=120))
        wait_metric(url, "danlu_running_batches", 1, model=slow.name)
        resp = httpx.post(slow.url(url), json=slow.body(3), timeout=60)
        assert resp.status_code == 504 and "request_timeout_s" in resp.json()["error"]
        busy.join()
        assert first[0].status_code == 504  # the slow one too: seconds of work, 0.3 s allowed
        wait_metric(url, "danlu_running_batches", 0, model=slow.name)  # the slow call ends
        time.sleep(0.3)
        # Only the slow batch ever ran: the timed-out small request left the queue unexecuted.
        assert metric(url, "danlu_batch_size_count", model=slow.name) == 1
        assert metric(url, "danlu_requests_total", model=slow.name, status="504") == 2
        assert httpx.post(slow.url(url), json=slow.body(3), timeout=60).status_code == 200


def test_client_disconnect_drops_its_queued_work(slow: Slow) -> None:
    with running_server([slow.package], *slow.args) as (url, _):
        busy, _box = _in_background(lambda: httpx.post(slow.url(url), json=slow.body(SLOW_TEXTS),
                                                       timeout=120))
        wait_metric(url, "danlu_running_batches", 1, model=slow.name)
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the socket
            httpx.post(slow.url(url), json=slow.body(5), timeout=0.3)
        busy.join()
        deadline = time.monotonic() + 5
        while metric(url, "danlu_requests_total", model=slow.name, status="499") < 1:
            assert time.monotonic() < deadline, "the disconnect was never noticed"
            time.sleep(0.05)
        assert metric(url, "danlu_batch_size_count", model=slow.name) == 1
        assert metric(url, "danlu_inflight_requests", model=slow.name) == 0


def test_body_over_the_limit_is_413(digits_package: Path) -> None:
    with running_server([digits_package], "--max-body-bytes", "4096") as (url, _):
        big = digits_body(np.ones((30, 64), np.float32))
        resp = httpx.post(f"{url}{INFER}", json=big)
        assert resp.status_code == 413 and "max_body_bytes" in resp.json()["error"]

        def chunks():  # no Content-Length: the limit holds while streaming
            for _ in range(10):
                yield b" " * 1000
        resp = httpx.post(f"{url}{INFER}", content=chunks())
        assert resp.status_code == 413
        assert httpx.post(f"{url}{INFER}",
                          json=digits_body(np.ones((2, 64), np.float32))).status_code == 200


def test_metrics_are_prometheus_text(server: str) -> None:
    httpx.post(f"{server}{INFER}", json=digits_body(np.ones((3, 64), np.float32)))
    httpx.post(f"{server}{INFER}", content=b"{")
    resp = httpx.get(f"{server}/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert metric(server, "danlu_requests_total", model="digits", status="200") >= 1
    assert metric(server, "danlu_requests_total", model="digits", status="400") >= 1
    for family in ("danlu_request_duration_seconds_count", "danlu_queue_duration_seconds_count",
                   "danlu_inference_duration_seconds_count", "danlu_batch_size_count"):
        assert metric(server, family, model="digits") >= 1, family
    assert "danlu_inflight_requests" in resp.text


def test_bearer_token_guards_models_but_not_health(digits_package: Path) -> None:
    with running_server([digits_package], env={"DANLU_TOKEN": "s3cret"}) as (url, _):
        body = digits_body(np.ones((1, 64), np.float32))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            resp = httpx.post(f"{url}{INFER}", json=body, headers=headers)
            assert resp.status_code == 401 and "Bearer" in resp.json()["error"]
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert httpx.get(f"{url}/v2/models/digits").status_code == 401
        assert httpx.post(f"{url}/v1/models/digits:predict", json={"instances": [[1] * 64]}
                          ).status_code == 401
        ok = httpx.post(f"{url}{INFER}", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        for open_path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/v2", "/"):
            assert httpx.get(f"{url}{open_path}").status_code == 200, open_path


def test_sigterm_finishes_queued_requests_and_exits_0(slow: Slow) -> None:
    with running_server([slow.package], *slow.args) as (url, proc):
        busy, first = _in_background(lambda: httpx.post(slow.url(url), json=slow.body(SLOW_TEXTS),
                                                        timeout=120))
        wait_metric(url, "danlu_running_batches", 1, model=slow.name)
        queued, second = _in_background(lambda: httpx.post(slow.url(url), json=slow.body(50),
                                                           timeout=120))
        wait_metric(url, "danlu_queue_size", 1, model=slow.name)
        proc.send_signal(signal.SIGTERM)
        busy.join()
        queued.join()
        assert proc.wait(timeout=60) == 0
        assert first[0].status_code == 200 and second[0].status_code == 200
        with pytest.raises(httpx.ConnectError):  # stopped accepting
            httpx.get(f"{url}/v2/health/live")


def test_workers_serve_from_several_processes_sharing_the_cores(digits_package: Path) -> None:
    psutil = pytest.importorskip("psutil")
    with running_server([digits_package], "--workers", "2", "--inference-workers", "1") \
            as (url, proc):
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(10):
                outputs_by_name(client.post(INFER, json=digits_body(np.ones((1, 64), np.float32))))
        deadline = time.monotonic() + 30
        while len(workers := psutil.Process(proc.pid).children()) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # each worker: cores / 2 threads per call; the user's OMP_NUM_THREADS and
        # OMP_WAIT_POLICY (tests/conftest.py sets both) untouched, so no spin count of danlu's
        assert metric(url, "danlu_intra_op_threads", model="digits") == share(2)
        for worker in workers:
            env = worker.environ()
            assert env["OMP_WAIT_POLICY"] == os.environ["OMP_WAIT_POLICY"]
            assert "GOMP_SPINCOUNT" not in env
            assert env["OMP_NUM_THREADS"] == os.environ["OMP_NUM_THREADS"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
