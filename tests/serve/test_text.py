"""Text models over real HTTP, on the package the session's tiny text run wrote (2 MiniLM layers,
texts cut to 32 tokens): raw strings in over v2 (JSON and binary BYTES) and /v1, the answers
that run's evaluation computed out, per runtime (`--runtime torch | onnxruntime |
onnxruntime-int8`), with the texts the tokenizer cut reported."""

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

from .conftest import Evaluation, free_port, metric, running_server, text_body

NAME = "tiny-text"  # the recipe's name (tests/textdata.py tiny_text_recipe)
INFER, PREDICT = f"/v2/models/{NAME}/infer", f"/v1/models/{NAME}:predict"
LABELS = ["business", "entertainment", "politics", "sports", "tech"]
# Far under 32 tokens: never cut. (Nearly every BBC article is longer than 32 tokens.)
SHORT = ["Shares rose after record profits.", "The striker scored twice.", "ok"]
ATOL = 1e-4  # float32 ONNX Runtime vs the float32 torch model evaluation ran (export's gate)


@pytest.fixture(scope="module")
def texts(text_eval: Evaluation) -> list[str]:
    return text_eval.values["text"].tolist()


@pytest.fixture(scope="module")
def cut(text_package: Path, texts: list[str]) -> list[int]:
    """The test texts the package's own tokenizer cuts to 32 tokens (the oracle of `truncated`)."""
    (feature,) = load_package(text_package).features
    rows = np.flatnonzero(feature.encode(np.array(texts, dtype=object))[TRUNCATED]).tolist()
    assert rows  # articles run past 32 tokens
    return rows


@pytest.fixture(scope="module")
def meta(text_package: Path) -> dict:
    return json.loads((text_package / "danlu-model.json").read_text())


@pytest.fixture(scope="module")
def onnx_server(text_package: Path):
    """`--runtime onnxruntime` (float32: answers do not depend on batch-mates); batching waits
    100 ms for company."""
    with running_server([text_package], "--runtime", "onnxruntime", "--threads", "1",
                        "--max-queue-delay-ms", "100") as (url, _):
        with httpx.Client(base_url=url, timeout=120) as client:
            yield client


def v2_answer(resp: httpx.Response) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(probabilities, labels, truncated rows) from a JSON v2 response."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    out = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in body["outputs"]}
    return out["probabilities"], out["label"], body["parameters"]["truncated"]


def test_v2_json_texts_answer_what_evaluation_computed(onnx_server, texts, cut,
                                                        text_eval) -> None:
    probs, labels, truncated = v2_answer(onnx_server.post(INFER, json=text_body(texts, id="t1")))
    np.testing.assert_array_equal(labels, text_eval.labels)
    np.testing.assert_allclose(probs, text_eval.probs, atol=ATOL)
    assert truncated == cut


def test_v2_binary_bytes_with_tritonclient(onnx_server, texts, cut, text_eval) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(str(onnx_server.base_url).removeprefix("http://"))
    try:
        inp = httpclient.InferInput("text", [len(texts)], "BYTES")
        inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))  # binary
        result = client.infer(NAME, [inp])
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("label"), text_eval.labels)
    np.testing.assert_allclose(result.as_numpy("probabilities"), text_eval.probs, atol=ATOL)
    assert result.get_response()["parameters"] == {"truncated": cut}


def test_v1_strings_objects_and_columns_answer_what_evaluation_computed(onnx_server, texts, cut,
                                                                       text_eval) -> None:
    names = [LABELS[i] for i in text_eval.labels]
    for instances in (texts, [{"text": t} for t in texts]):
        resp = onnx_server.post(PREDICT, json={"instances": instances})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert [p["label"] for p in body["predictions"]] == names
        assert body["truncated"] == cut
        probs = [[p["probabilities"][n] for n in LABELS] for p in body["predictions"]]
        np.testing.assert_allclose(probs, text_eval.probs, atol=ATOL)
    resp = onnx_server.post(PREDICT, json={"inputs": {"text": texts}})
    assert resp.json()["outputs"]["label"] == text_eval.labels.tolist()


def test_python_client_sends_texts(onnx_server, texts, text_eval) -> None:
    with Client(str(onnx_server.base_url)) as client:
        out = client.infer(NAME, {"text": np.array(texts)})  # binary BYTES both ways
    np.testing.assert_array_equal(out["label"], text_eval.labels)


def test_truncation_is_reported_per_request_row(onnx_server, texts, cut) -> None:
    long = texts[cut[0]]
    _, _, truncated = v2_answer(onnx_server.post(INFER, json=text_body(
        [SHORT[0], long, SHORT[1], long + " more"])))
    assert truncated == [1, 3]
    _, _, truncated = v2_answer(onnx_server.post(INFER, json=text_body(SHORT)))
    assert truncated == []


def test_concurrent_text_requests_answer_as_one_at_a_time(onnx_server, texts) -> None:
    """Joined into one batch, padded to its longest text: the attention mask keeps every row's
    answer what it is alone (the 2-token "ok" next to 32-token articles included)."""
    mixed = [*SHORT, *texts[:9]]
    alone = [v2_answer(onnx_server.post(INFER, json=text_body([t]))) for t in mixed]

    def one(i: int) -> tuple:
        return v2_answer(onnx_server.post(INFER, json=text_body([mixed[i]])))

    url = str(onnx_server.base_url)
    before = (metric(url, "danlu_batch_requests_count", model=NAME),
              metric(url, "danlu_batch_requests_sum", model=NAME))
    with ThreadPoolExecutor(len(mixed)) as pool:
        answers = list(pool.map(one, range(len(mixed))))
    calls = metric(url, "danlu_batch_requests_count", model=NAME) - before[0]
    requests = metric(url, "danlu_batch_requests_sum", model=NAME) - before[1]
    assert requests == len(mixed) and calls < requests  # some calls held several requests
    for (probs, labels, truncated), (p1, l1, t1) in zip(answers, alone, strict=True):
        assert labels.tolist() == l1.tolist() and truncated == t1
        np.testing.assert_allclose(probs, p1, atol=1e-5)


def test_one_batch_pads_to_its_longest_text_without_changing_answers(text_package,
                                                                     texts) -> None:
    runtime = load_runtime(load_package(text_package),
                           ServeConfig(runtime="onnxruntime", intra_op_threads=1))
    batch_texts = np.array([*SHORT, *texts[:5]], dtype=object)
    batch = runtime.run({"text": batch_texts})
    alone = [runtime.run({"text": batch_texts[i:i + 1]}) for i in range(len(batch_texts))]
    np.testing.assert_array_equal(batch["label"], [a["label"][0] for a in alone])
    np.testing.assert_allclose(batch["probabilities"],
                               np.concatenate([a["probabilities"] for a in alone]), atol=1e-5)
    assert batch[TRUNCATED].tolist() == [a[TRUNCATED][0] for a in alone]
    assert batch[TRUNCATED][:len(SHORT)].tolist() == [False] * len(SHORT)


# ---- every runtime the package has, as `danlu serve --runtime` serves it ----------------------

PLATFORMS = {"torch": "pytorch_libtorch", "onnxruntime": "onnxruntime_onnx",
             "onnxruntime-int8": "onnxruntime_onnx"}


@pytest.mark.parametrize("runtime", [None, "torch", "onnxruntime", "onnxruntime-int8"],
                         ids=["default", "torch", "onnxruntime", "onnxruntime-int8"])
def test_each_runtime_serves_what_export_measured_of_it(text_package, meta, texts, text_eval,
                                                        runtime: str | None) -> None:
    """One request holding every test text is one call (max batch size 64 >= the 50 texts) at
    export's threads, as export ran it: the answers differ from evaluation's exactly as much as
    export recorded for that runtime (its parity), whatever the gates decided. bf16 and int8
    depend on their batch-mates (int8 quantizes activations per batch), hence one call."""
    name = runtime or meta["runtime"]
    entry = meta["runtimes"][name]
    threads = meta["runtime_choice"]["reference"]["threads"]
    args = ["--threads", str(threads), "--max-batch-size", "64"]
    with running_server([text_package], *args, *(["--runtime", runtime] if runtime else [])) as (
            url, _):
        info = httpx.get(f"{url}/v2/models/{NAME}").json()
        probs, labels, _ = v2_answer(httpx.post(f"{url}{INFER}", json=text_body(texts),
                                                timeout=300))
    assert info["parameters"]["runtime"] == name and info["platform"] == PLATFORMS[name]
    diff = float(np.abs(probs - text_eval.probs).max())
    agree = float((labels == text_eval.labels).mean())
    assert diff == pytest.approx(entry["parity"]["max_abs_diff"], abs=1e-5), (name, entry)
    assert agree == entry["parity"]["label_agreement"]
    assert entry["parity"]["rows"] == len(texts)


def test_metadata_shows_the_text_input_and_how_it_is_encoded(onnx_server) -> None:
    info = onnx_server.get(f"/v2/models/{NAME}").json()
    assert info["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert info["platform"] == "onnxruntime_onnx"
    assert info["parameters"] == {"runtime": "onnxruntime", "features": [
        {"name": "text", "type": "text", "widget": "text", "max_length": 32,
         "truncation": "right", "tokenized_inputs": ["input_ids", "attention_mask"]}]}


def _binary(texts: list[bytes]) -> tuple[bytes, dict]:
    """A v2 body with "text" as binary BYTES: JSON header, then length-prefixed elements."""
    blob = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    head = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)],
                                   "parameters": {"binary_data_size": len(blob)}}]}).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head))}


@pytest.mark.parametrize("path,body,needles", [
    (INFER, text_body(["fine", 5]), ["element 1", "JSON strings"]),
    (INFER, text_body(["fine", None]), ["element 1", "JSON strings"]),
    (INFER, {"inputs": [{"name": "text", "datatype": "FP32", "shape": [2], "data": [1, 2]}]},
     ["BYTES"]),
    (INFER, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [0], "data": []}]},
     ["input 'text': no rows; send at least one"]),
    (INFER, {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1, 1],
                         "data": [["a"]]}]}, ["shape [1, 1]", "[-1]"]),
    (INFER, {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1],
                         "data": [1]}]}, ["unknown input 'input_ids'", "text (BYTES [-1])"]),
    (PREDICT, {"instances": []}, ["non-empty list"]),
    (PREDICT, {"instances": ["ok", 3.5]}, ["element 1", "JSON strings"]),
    (PREDICT, {"instances": [{"text": "ok"}, {"text": ["a", "b"]}]}, ["text"]),
    (PREDICT, {"instances": [{"txt": "ok"}]}, ["unknown input 'txt'"]),
], ids=["int-element", "null-element", "fp32", "empty", "rank-2", "token-ids", "v1-empty",
        "v1-float", "v1-list-in-object", "v1-unknown-key"])
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


def test_unknown_runtime_is_a_clear_error_listing_the_choices(text_package, meta) -> None:
    danlu = str(Path(sys.executable).with_name("danlu"))
    proc = subprocess.run([danlu, "serve", str(text_package), "--runtime", "tensorrt",
                           "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "--runtime 'tensorrt' is not a runtime of this package" in proc.stderr, proc.stderr
    assert f"choose one of: {', '.join(meta['runtimes'])}" in proc.stderr, proc.stderr


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(),
                    reason="needs Debian's chromium (.ci/run installs it)")
def test_playground_text_box_shows_the_models_label(onnx_server, texts, cut, text_eval) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{onnx_server.base_url}/")
        assert page.locator("#text-input").is_visible()
        assert not page.locator("#table-input").is_visible()
        short = v2_answer(onnx_server.post(INFER, json=text_body(SHORT[:1])))[1][0]
        for text, label, was_cut in [(SHORT[0], short, False),
                                     *[(texts[i], text_eval.labels[i], i in cut) for i in (0, 1, 2)]]:
            page.click("#clear")
            page.fill("#text", text)
            page.click("#predict")
            page.wait_for_function("document.querySelector('#label').textContent !== '–'")
            assert page.locator("#label").inner_text() == LABELS[label]
            assert page.locator(".bar").count() == len(LABELS)
            shown = "text cut to 32 tokens" in page.locator("#confidence").inner_text()
            assert shown == was_cut
        browser.close()
