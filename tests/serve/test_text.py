"""Text models over real HTTP: raw strings in, the in-process model's answers out, per runtime."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from danlu.serve import Client, ServeConfig, load_package
from danlu.serve.runtimes import TRUNCATED, load_runtime

from .conftest import free_port, running_server
from .textpkg import LABELS, LONG_TEXT, TEXTS, reference

INFER, PREDICT = "/v2/models/news/infer", "/v1/models/news:predict"
ALL = [*TEXTS, LONG_TEXT]


@pytest.fixture(scope="module")
def expected(text_package: Path) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) of the packaged torch/ folder in fp32, in-process, one text at
    a time (no padding at all): the answers every runtime and batch must give."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(text_package / "torch",
                                                               local_files_only=True).eval()
    probs, labels = reference(model, ALL, text_package / "tokenizer.json")
    assert len(set(labels.tolist())) == len(LABELS)  # the head tells the texts apart
    return probs, labels


@pytest.fixture(scope="module")
def onnx_server(text_package: Path):
    """The package's default runtime (ONNX Runtime fp32), batching waits 100 ms for company."""
    with running_server([text_package], "--threads", "1", "--max-queue-delay-ms", "100") as (
            url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


@pytest.fixture(scope="module")
def torch_server(text_package: Path):
    """The same package served by `--runtime torch` (bfloat16, as the package records)."""
    with running_server([text_package], "--runtime", "torch", "--threads", "1") as (url, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


def v2_body(texts: list, **extra) -> dict:
    """A JSON v2 request with one BYTES tensor "text"."""
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                        "data": texts}], **extra}


def v2_answer(resp: httpx.Response) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(probabilities, labels, truncated rows) from a JSON v2 response."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    out = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in body["outputs"]}
    return out["probabilities"], out["label"], body["parameters"]["truncated"]


def test_v2_json_text_matches_the_model_in_process(onnx_server, expected) -> None:
    probs, labels, truncated = v2_answer(onnx_server.post(INFER, json=v2_body(ALL, id="t1")))
    np.testing.assert_array_equal(labels, expected[1])
    np.testing.assert_allclose(probs, expected[0], atol=1e-4)
    assert truncated == [len(ALL) - 1]  # LONG_TEXT is over max_length, the rest are not


def test_v2_binary_bytes_with_tritonclient(onnx_server, expected) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(str(onnx_server.base_url).removeprefix("http://"))
    try:
        inp = httpclient.InferInput("text", [len(ALL)], "BYTES")
        inp.set_data_from_numpy(np.array([t.encode() for t in ALL], dtype=object))  # binary
        result = client.infer("news", [inp])
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("label"), expected[1])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected[0], atol=1e-4)
    assert result.get_response()["parameters"] == {"truncated": [len(ALL) - 1]}


def test_v1_strings_and_objects_match_the_model(onnx_server, expected) -> None:
    names = [LABELS[i] for i in expected[1]]
    for instances in (ALL, [{"text": t} for t in ALL]):
        resp = onnx_server.post(PREDICT, json={"instances": instances})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert [p["label"] for p in body["predictions"]] == names
        assert body["truncated"] == [len(ALL) - 1]
        probs = [[p["probabilities"][n] for n in LABELS] for p in body["predictions"]]
        np.testing.assert_allclose(probs, expected[0], atol=1e-4)


def test_python_client_sends_texts(onnx_server, expected) -> None:
    with Client(str(onnx_server.base_url)) as client:
        out = client.infer("news", {"text": np.array(ALL)})  # binary BYTES both ways
    np.testing.assert_array_equal(out["label"], expected[1])


def test_truncation_is_reported_per_request_row(onnx_server) -> None:
    _, _, truncated = v2_answer(onnx_server.post(INFER, json=v2_body(
        [TEXTS[0], LONG_TEXT, TEXTS[1], LONG_TEXT + " more"])))
    assert truncated == [1, 3]
    _, _, truncated = v2_answer(onnx_server.post(INFER, json=v2_body(TEXTS[:3])))
    assert truncated == []


def test_concurrent_text_requests_answer_as_one_at_a_time(onnx_server, expected) -> None:
    """Joined into one batch, padded to its longest text: the attention mask keeps every
    row's answer what it is alone (short "ok" next to the 32-token LONG_TEXT included)."""
    def one(i: int) -> tuple:
        return v2_answer(onnx_server.post(INFER, json=v2_body([ALL[i]])))

    before = _merged(onnx_server)
    with ThreadPoolExecutor(len(ALL)) as pool:
        answers = list(pool.map(one, range(len(ALL))))
    after = _merged(onnx_server)
    assert after[1] - before[1] > after[0] - before[0]  # some calls held several requests
    for i, (probs, labels, truncated) in enumerate(answers):
        assert labels.tolist() == [expected[1][i]]
        np.testing.assert_allclose(probs[0], expected[0][i], atol=1e-4)
        assert truncated == ([0] if ALL[i] is LONG_TEXT else [])


def _merged(client: httpx.Client) -> tuple[float, float]:
    """(runtime calls, requests in them) so far, from /metrics' danlu_batch_requests."""
    text = client.get("/metrics").text
    vals = {}
    for line in text.splitlines():
        for key in ("danlu_batch_requests_count", "danlu_batch_requests_sum"):
            if line.startswith(key + "{"):
                vals[key] = float(line.rsplit(" ", 1)[1])
    return vals.get("danlu_batch_requests_count", 0.0), vals.get("danlu_batch_requests_sum", 0.0)


def test_one_batch_pads_to_its_longest_text_without_changing_answers(text_package) -> None:
    runtime = load_runtime(load_package(text_package), ServeConfig(intra_op_threads=1))
    texts = np.array(ALL, dtype=object)
    batch = runtime.run({"text": texts})
    alone = [runtime.run({"text": texts[i:i + 1]}) for i in range(len(ALL))]
    np.testing.assert_array_equal(batch["label"], [a["label"][0] for a in alone])
    np.testing.assert_allclose(batch["probabilities"],
                               np.concatenate([a["probabilities"] for a in alone]), atol=1e-5)
    assert batch[TRUNCATED].tolist() == [False] * len(TEXTS) + [True]


def test_torch_runtime_fp32_matches_the_model(text_package, expected) -> None:
    package = load_package(text_package)
    package.runtimes["torch"] = {**package.runtimes["torch"], "dtype": "float32"}
    import torch

    threads = torch.get_num_threads()
    try:  # the thread policy is ONNX Runtime's: intra_op_threads, else cores / workers
        runtime = load_runtime(package, ServeConfig(runtime="torch", intra_op_threads=1))
        assert torch.get_num_threads() == 1 and runtime.inner.dtype == torch.float32
        out = runtime.run({"text": np.array(ALL, dtype=object)})
    finally:
        torch.set_num_threads(threads)  # this pytest process goes on training models
    np.testing.assert_array_equal(out["label"], expected[1])
    np.testing.assert_allclose(out["probabilities"], expected[0], atol=1e-4)


def test_torch_runtime_bf16_agrees_with_fp32_labels(torch_server, expected) -> None:
    meta = torch_server.get("/v2/models/news").json()
    assert meta["platform"] == "pytorch_libtorch" and meta["parameters"]["runtime"] == "torch"
    probs, labels, truncated = v2_answer(torch_server.post(INFER, json=v2_body(ALL)))
    assert truncated == [len(ALL) - 1]
    # bf16 keeps 8 bits of mantissa: labels must agree wherever fp32 is not a near tie
    # (top-2 gap over 0.5 here: 8 of the 9 texts; the packaged head is untrained).
    top2 = np.sort(expected[0], axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 0.5
    assert clear.sum() >= 7
    np.testing.assert_array_equal(labels[clear], expected[1][clear])
    assert np.abs(probs - expected[0]).max() < 0.5


def test_int8_runtime_serves_model_int8_onnx_and_warns_it_failed_its_gate(
        text_package, expected, caplog) -> None:
    with caplog.at_level("WARNING", logger="danlu.serve"):
        runtime = load_runtime(load_package(text_package),
                               ServeConfig(runtime="onnxruntime-int8", intra_op_threads=1))
    assert "not gated: a test package" in caplog.text
    assert Path(runtime.inner.session._model_path).name == "model.int8.onnx"
    out = runtime.run({"text": np.array(ALL, dtype=object)})
    # Labels are not compared: this untrained head magnifies tiny differences between pooled
    # vectors, which int8 weights move (why its entry failed the gate). It is the int8 graph,
    # answering valid distributions whose argmax is the label.
    assert out["probabilities"].shape == (len(ALL), len(LABELS))
    np.testing.assert_allclose(out["probabilities"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["label"], out["probabilities"].argmax(1))
    assert np.abs(out["probabilities"] - expected[0]).max() > 1e-3


def test_metadata_shows_the_text_input(onnx_server) -> None:
    meta = onnx_server.get("/v2/models/news").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["parameters"]["text"] == {"max_length": 32, "truncation": "right",
                                          "tokenized_inputs": ["input_ids", "attention_mask"]}


def _binary(texts: list[bytes]) -> tuple[bytes, dict]:
    """A v2 body with "text" as binary BYTES: JSON header, then length-prefixed elements."""
    blob = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                                   "parameters": {"binary_data_size": len(blob)}}]}).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head))}


@pytest.mark.parametrize("path,body,needles", [
    (INFER, v2_body(["fine", 5]), ["element 1", "JSON strings"]),
    (INFER, v2_body(["fine", None]), ["element 1", "JSON strings"]),
    (INFER, {"inputs": [{"name": "text", "datatype": "FP32", "shape": [2], "data": [1, 2]}]},
     ["BYTES"]),
    (INFER, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [0], "data": []}]},
     ["no texts"]),
    (INFER, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1],
                         "data": [["a"]]}]}, ["shape [1, 1]", "[-1]"]),
    (INFER, {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1],
                         "data": [1]}]}, ["unknown input", "text (BYTES [-1])"]),
    (PREDICT, {"instances": []}, ["non-empty list"]),
    (PREDICT, {"instances": ["ok", 3.5]}, ["element 1", "JSON strings"]),
    (PREDICT, {"instances": [{"text": "ok"}, {"text": ["a", "b"]}]}, ["text"]),
    (PREDICT, {"instances": [{"txt": "ok"}]}, ["unknown input 'txt'"]),
])
def test_bad_text_requests_are_400_saying_what_was_expected(onnx_server, path, body,
                                                            needles) -> None:
    resp = onnx_server.post(path, json=body)
    assert resp.status_code == 400, resp.text
    message = resp.json()["error"]
    assert all(n in message for n in needles), message


def test_invalid_utf8_in_binary_bytes_is_400(onnx_server) -> None:
    body, headers = _binary([b"fine", b"caf\xe9"])  # latin-1, not UTF-8
    resp = onnx_server.post(INFER, content=body, headers=headers)
    assert resp.status_code == 400, resp.text
    assert "element 1 is not valid UTF-8" in resp.json()["error"]
    body, headers = _binary(["café".encode(), b"ok"])
    assert onnx_server.post(INFER, content=body, headers=headers).status_code == 200


def test_unknown_runtime_is_a_clear_error_listing_the_choices(text_package) -> None:
    danlu = str(Path(sys.executable).with_name("danlu"))
    proc = subprocess.run([danlu, "serve", str(text_package), "--runtime", "tensorrt",
                           "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "--runtime 'tensorrt'" in proc.stderr, proc.stdout + proc.stderr
    assert "onnxruntime, torch, onnxruntime-int8" in proc.stderr, (
        proc.stdout + proc.stderr)


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                    reason="needs Debian's chromium (.ci/run installs it)")
def test_playground_text_box_shows_the_models_label(onnx_server, expected) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{onnx_server.base_url}/")
        assert page.locator("#text-input").is_visible()
        assert not page.locator("#table-input").is_visible()
        for i in (0, 1, 2, len(ALL) - 1):
            page.click("#clear")
            page.fill("#text", ALL[i])
            page.click("#predict")
            page.wait_for_function("document.querySelector('#label').textContent !== '–'")
            assert page.locator("#label").inner_text() == LABELS[expected[1][i]]
            assert page.locator(".bar").count() == len(LABELS)
            cut = "text cut to 32 tokens" in page.locator("#confidence").inner_text()
            assert cut == (ALL[i] is LONG_TEXT)
        browser.close()
