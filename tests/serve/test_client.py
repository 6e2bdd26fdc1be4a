"""danlu.serve.Client against a real server: numpy in and out, errors, retries."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from danlu.serve import Client, ServerError

from .conftest import running_server
from .test_batching import wait_metric
from .test_server import ROWS, oracle


@pytest.mark.parametrize("binary", [True, False])
def test_infer_returns_numpy_outputs(server: str, packages: dict, binary: bool) -> None:
    probs, labels = oracle(packages["toy"], ROWS)
    with Client(server) as c:
        out = c.infer("toy", {"pixels": ROWS}, binary=binary)
        np.testing.assert_array_equal(out["label"], labels)
        np.testing.assert_allclose(out["probabilities"], probs, rtol=1e-6)
        only = c.infer("toy", ROWS[:2], outputs=["label"], version="1", binary=binary)
        assert list(only) == ["label"] and only["label"].tolist() == labels[:2].tolist()
        assert c.live() and c.ready() and c.metadata("toy")["name"] == "toy"


def test_server_errors_carry_the_servers_message(server: str) -> None:
    with Client(server) as c:
        with pytest.raises(ServerError, match=r"\[-1, 4\]") as info:
            c.infer("toy", {"pixels": np.ones((1, 5), np.float32)})
        assert info.value.status == 400 and "shape" in info.value.message
        with pytest.raises(ServerError) as missing:
            c.infer("nope", {"pixels": ROWS})
        assert missing.value.status == 404 and "toy" in missing.value.message


def test_client_retries_429_until_the_queue_drains(slow_package: Path) -> None:
    args = ("--inference-workers", "1", "--max-batch-size", "8192", "--max-queue-size", "1",
            "--threads", "1")
    with running_server([slow_package], *args) as (url, _):
        x = np.full((8000, 1), 0.5, np.float32)  # about 2 s of ORT on one thread
        busy = threading.Thread(target=lambda: httpx.post(
            f"{url}/v2/models/slow/infer", timeout=60, json={"inputs": [
                {"name": "x", "shape": [8000, 1], "datatype": "FP32", "data": x.ravel().tolist()}]}))
        busy.start()
        wait_metric(url, "danlu_running_batches", 1, model="slow")
        filler = threading.Thread(target=lambda: Client(url).infer("slow", x[:1]))
        filler.start()
        wait_metric(url, "danlu_queue_size", 1, model="slow")  # full: the next call gets 429
        with Client(url, retries=20, backoff_s=0.05) as c:
            assert c.infer("slow", {"x": x[:3]})["y"].shape == (3, 1)
        with Client(url, retries=0) as c:  # and without retries, the 429 is the error
            busy2 = threading.Thread(target=lambda: Client(url).infer("slow", x))
            wait_metric(url, "danlu_running_batches", 0, model="slow")
            wait_metric(url, "danlu_queue_size", 0, model="slow")
            busy2.start()
            wait_metric(url, "danlu_running_batches", 1, model="slow")
            filler2 = threading.Thread(target=lambda: Client(url).infer("slow", x[:1]))
            filler2.start()
            wait_metric(url, "danlu_queue_size", 1, model="slow")
            with pytest.raises(ServerError) as info:
                c.infer("slow", {"x": x[:3]})
            assert info.value.status == 429 and "max_queue_size" in info.value.message
            for t in (busy, filler, busy2, filler2):
                t.join()


def test_connection_refused_after_retries() -> None:
    with Client("http://127.0.0.1:9", retries=1, backoff_s=0.01) as c, \
            pytest.raises(httpx.ConnectError):
        c.infer("toy", {"pixels": ROWS})
