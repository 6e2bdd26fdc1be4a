"""danlu.serve.Client against a real server and packages danlu wrote: numpy in and out, errors,
retries."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from danlu.serve import Client, ServerError

from .conftest import SLOW_TEXTS, Evaluation, Slow, running_server, wait_metric


@pytest.mark.parametrize("binary", [True, False])
def test_infer_returns_numpy_outputs(server: str, digits_eval: Evaluation, binary: bool) -> None:
    x = digits_eval.values["pixels"][:16]
    with Client(server) as c:
        out = c.infer("digits", {"pixels": x}, binary=binary)
        np.testing.assert_array_equal(out["label"], digits_eval.labels[:16])
        np.testing.assert_allclose(out["probabilities"], digits_eval.probs[:16], atol=1e-4)
        only = c.infer("digits", x[:2], outputs=["label"], version="1", binary=binary)
        assert list(only) == ["label"] and only["label"].tolist() == digits_eval.labels[:2].tolist()
        assert c.live() and c.ready() and c.metadata("digits")["name"] == "digits"


def test_infer_sends_strings_and_numbers_by_name(server: str, table_eval: Evaluation) -> None:
    with Client(server) as c:
        out = c.infer("iris", table_eval.values)  # features FP32 and garden BYTES, binary
    np.testing.assert_array_equal(out["label"], table_eval.labels)


def test_server_errors_carry_the_servers_message(server: str) -> None:
    with Client(server) as c:
        with pytest.raises(ServerError, match=r"\[-1, 64\]") as info:
            c.infer("digits", {"pixels": np.ones((1, 5), np.float32)})
        assert info.value.status == 400 and "shape" in info.value.message
        with pytest.raises(ServerError) as missing:
            c.infer("nope", {"pixels": np.ones((1, 64), np.float32)})
        assert missing.value.status == 404 and "digits" in missing.value.message


def test_client_retries_429_until_the_queue_drains(slow: Slow) -> None:
    texts = np.array([slow.texts[i % len(slow.texts)] for i in range(SLOW_TEXTS)], dtype=object)
    with running_server([slow.package], *slow.args, "--max-queue-size", "1") as (url, _):
        def infer(x: np.ndarray) -> None:
            with Client(url, timeout=120) as c:
                c.infer(slow.name, {"text": x})

        busy = threading.Thread(target=infer, args=(texts,))
        busy.start()
        wait_metric(url, "danlu_running_batches", 1, model=slow.name)
        filler = threading.Thread(target=infer, args=(texts[:1],))
        filler.start()
        wait_metric(url, "danlu_queue_size", 1, model=slow.name)  # full: the next call gets 429
        with Client(url, retries=30, backoff_s=0.05, timeout=120) as c:
            assert c.infer(slow.name, {"text": texts[:3]})["label"].shape == (3,)
        with Client(url, retries=0) as c:  # and without retries, the 429 is the error
            busy2 = threading.Thread(target=infer, args=(texts,))
            wait_metric(url, "danlu_running_batches", 0, model=slow.name)
            wait_metric(url, "danlu_queue_size", 0, model=slow.name)
            busy2.start()
            wait_metric(url, "danlu_running_batches", 1, model=slow.name)
            filler2 = threading.Thread(target=infer, args=(texts[:1],))
            filler2.start()
            wait_metric(url, "danlu_queue_size", 1, model=slow.name)
            with pytest.raises(ServerError) as info:
                c.infer(slow.name, {"text": texts[:3]})
            assert info.value.status == 429 and "max_queue_size" in info.value.message
            for t in (busy, filler, busy2, filler2):
                t.join()


def test_connection_refused_after_retries() -> None:
    with Client("http://127.0.0.1:9", retries=1, backoff_s=0.01) as c, \
            pytest.raises(httpx.ConnectError):
        c.infer("digits", {"pixels": np.ones((1, 64), np.float32)})
