"""The HTTP server end to end: a real uvicorn process serving packages that danlu wrote (digits
from its run folder, iris, and the fragile copy of digits), httpx as the client; the answers are
compared with what the runs' own evaluation computed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import (
    Evaluation,
    digits_body,
    outputs_by_name,
    probabilities,
    table_body,
    v2_tensor,
)

# float32 ONNX Runtime vs the float32 torch model that evaluation ran: export's parity gate.
ATOL = 1e-4
DIGITS = "/v2/models/digits/infer"


@pytest.fixture(scope="module")
def rows(digits_eval: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """16 test images of digits (pixels 0..16), their evaluated probabilities and labels."""
    pick = np.arange(16) * 7
    return digits_eval.values["pixels"][pick], digits_eval.probs[pick], digits_eval.labels[pick]


def test_health_endpoints_answer(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


def test_server_metadata_names_danlu_and_its_binary_extension(client: httpx.Client) -> None:
    body = client.get("/v2").json()
    assert body["name"] == "danlu" and isinstance(body["version"], str)
    assert body["extensions"] == ["binary_tensor_data"]


def test_server_prints_its_url_once(server_process: tuple[str, Path]) -> None:
    url, logs = server_process
    assert (logs / "out.txt").read_text().count(url) == 1


@pytest.mark.parametrize("path", ["/v2/models/digits", "/v2/models/digits/versions/1"])
def test_model_metadata_declares_the_contract(client: httpx.Client, path: str) -> None:
    assert client.get(path).json() == {
        "name": "digits", "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}],
        "parameters": {"runtime": "onnxruntime", "features": [
            {"name": "pixels", "type": "image", "widget": "image", "shape": [1, 8, 8],
             "pixel_max": 16.0}]}}


def test_table_metadata_lists_both_inputs_and_the_category_choices(client: httpx.Client) -> None:
    meta = client.get("/v2/models/iris").json()  # `inputs`: the raw row (tests/serve/test_raw_rows)
    assert meta["parameters"]["feature_inputs"] == [
        {"name": "features", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "garden", "datatype": "BYTES", "shape": [-1]}]
    forms = {f["name"]: f for f in meta["parameters"]["features"]}
    assert forms["features"]["columns"] == ["sepal_length", "sepal_width", "petal_length",
                                            "petal_width"]
    assert forms["garden"] == {"name": "garden", "type": "category", "widget": "choice",
                               "choices": ["edinburgh", "kew", "wisley"]}


@pytest.mark.parametrize("path", ["/v2/models/digits/ready", "/v2/models/digits/versions/1/ready"])
def test_model_ready(client: httpx.Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200 and resp.json() == {"name": "digits", "ready": True}


@pytest.mark.parametrize("path", ["/v2/models/digits/versions/2",
                                  "/v2/models/digits/versions/2/ready",
                                  "/v2/models/nope", "/v2/models/nope/ready"])
def test_unknown_model_or_version_is_404(client: httpx.Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404 and "error" in resp.json()


@pytest.mark.parametrize("path", [DIGITS, "/v2/models/digits/versions/1/infer"])
def test_infer_answers_what_evaluation_computed(client: httpx.Client, rows, path: str) -> None:
    x, probs, labels = rows
    out = outputs_by_name(client.post(path, json=digits_body(x)))
    assert out["label"] == {"name": "label", "datatype": "INT64", "shape": [16],
                            "data": labels.tolist()}
    assert out["probabilities"]["shape"] == [16, 10]
    assert out["probabilities"]["datatype"] == "FP32"
    np.testing.assert_allclose(probabilities(out), probs, atol=ATOL)
    assert len(set(labels.tolist())) > 1  # the oracle check means something only if labels vary


def test_every_test_row_of_both_runs_answers_as_evaluated(client: httpx.Client, digits_eval,
                                                         table_eval) -> None:
    out = outputs_by_name(client.post(DIGITS, json=digits_body(digits_eval.values["pixels"])))
    np.testing.assert_array_equal(out["label"]["data"], digits_eval.labels)
    np.testing.assert_allclose(probabilities(out), digits_eval.probs, atol=ATOL)
    out = outputs_by_name(client.post("/v2/models/iris/infer", json=table_body(table_eval.values)))
    np.testing.assert_array_equal(out["label"]["data"], table_eval.labels)
    np.testing.assert_allclose(probabilities(out), table_eval.probs, atol=ATOL)


def test_infer_accepts_nested_data(client: httpx.Client, rows) -> None:
    flat = outputs_by_name(client.post(DIGITS, json=digits_body(rows[0])))
    body = digits_body(rows[0])
    body["inputs"][0]["data"] = rows[0].tolist()
    assert outputs_by_name(client.post(DIGITS, json=body)) == flat


def test_infer_converts_int64_pixels(client: httpx.Client, rows) -> None:
    x, _, labels = rows  # digits' pixels are whole numbers 0..16: exact as INT64
    body = {"inputs": [v2_tensor("pixels", x.astype(np.int64), "INT64")]}
    assert outputs_by_name(client.post(DIGITS, json=body))["label"]["data"] == labels.tolist()


def test_infer_honours_requested_outputs_and_echoes_id(client: httpx.Client, rows) -> None:
    resp = client.post(DIGITS, json=digits_body(rows[0][:2], id="req-42",
                                                outputs=[{"name": "label"}]))
    body = resp.json()
    assert body["id"] == "req-42" and body["model_name"] == "digits"
    assert body["model_version"] == "1"
    assert [o["name"] for o in body["outputs"]] == ["label"]


def test_infer_without_content_type_header(client: httpx.Client, rows) -> None:
    # tritonclient sends the JSON body with no Content-Type: the server must not care.
    request = client.build_request("POST", DIGITS, content=json.dumps(digits_body(rows[0])).encode())
    assert "content-type" not in request.headers
    assert outputs_by_name(client.send(request))["label"]["data"] == rows[2].tolist()


def test_two_inputs_in_any_order_and_as_v1_objects(client: httpx.Client, table_eval) -> None:
    v = {k: a[:6] for k, a in table_eval.values.items()}
    body = table_body(v)
    body["inputs"].reverse()  # garden first: inputs are matched by name
    out = outputs_by_name(client.post("/v2/models/iris/infer", json=body))
    assert out["label"]["data"] == table_eval.labels[:6].tolist()
    instances = [{"features": f.tolist(), "garden": str(g)}
                 for f, g in zip(v["features"], v["garden"], strict=True)]
    resp = client.post("/v1/models/iris:predict", json={"instances": instances})
    assert resp.status_code == 200, resp.text
    names = ["setosa", "versicolor", "virginica"]
    assert [p["label"] for p in resp.json()["predictions"]] == \
        [names[i] for i in table_eval.labels[:6]]


def test_an_unseen_category_is_answered_as_unknown_not_refused(client: httpx.Client,
                                                              table_eval) -> None:
    v = {k: a[:3] for k, a in table_eval.values.items()}
    known = outputs_by_name(client.post("/v2/models/iris/infer", json=table_body(v)))
    v["garden"] = np.array(["versailles"] * 3, dtype=object)  # never seen in training
    unseen = outputs_by_name(client.post("/v2/models/iris/infer", json=table_body(v)))
    assert unseen["probabilities"]["shape"] == known["probabilities"]["shape"] == [3, 3]


def test_concurrent_requests_all_answer(client: httpx.Client, rows) -> None:
    x, _, labels = rows

    def one(i: int) -> list[int]:
        return outputs_by_name(client.post(DIGITS, json=digits_body(x[i:i + 1])))["label"]["data"]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(len(x))))
    assert got == [[int(k)] for k in labels]


# --- TF-Serving-style /v1 -------------------------------------------------------------------

LABELS = [str(d) for d in range(10)]


@pytest.mark.parametrize("path", ["/v1/models/digits:predict",
                                  "/v1/models/digits/versions/1:predict"])
def test_predict_rows_give_label_names(client: httpx.Client, rows, path: str) -> None:
    x, probs, labels = rows
    resp = client.post(path, json={"instances": x.tolist()})
    assert resp.status_code == 200, resp.text
    preds = resp.json()["predictions"]
    assert [p["label"] for p in preds] == [LABELS[i] for i in labels]
    assert [p["label_index"] for p in preds] == labels.tolist()
    for p, row in zip(preds, probs, strict=True):
        assert list(p["probabilities"]) == LABELS
        np.testing.assert_allclose(list(p["probabilities"].values()), row, atol=ATOL)


def test_predict_rows_may_be_nested_per_row(client: httpx.Client, rows) -> None:
    x, _, labels = rows
    nested = [r.reshape(8, 8).tolist() for r in x[:2]]  # 8x8 per row, 64 values
    resp = client.post("/v1/models/digits:predict", json={"instances": nested})
    assert [p["label_index"] for p in resp.json()["predictions"]] == labels[:2].tolist()


def test_predict_column_form(client: httpx.Client, rows) -> None:
    x, probs, labels = rows
    for inputs in ({"pixels": x[:3].tolist()}, x[:3].tolist()):
        resp = client.post("/v1/models/digits:predict", json={"inputs": inputs})
        assert resp.status_code == 200, resp.text
        out = resp.json()["outputs"]
        assert out["label"] == labels[:3].tolist()
        np.testing.assert_allclose(out["probabilities"], probs[:3], atol=ATOL)


def test_tf_model_status(client: httpx.Client) -> None:
    for path in ("/v1/models/digits", "/v1/models/digits/versions/1"):
        status = client.get(path).json()["model_version_status"][0]
        assert status["version"] == "1" and status["state"] == "AVAILABLE"
    assert client.get("/v1/models/digits/versions/3").status_code == 404


# --- every client mistake: the right 4xx, {"error"}, and the server keeps answering ----------

GOOD = digits_body(np.ones((2, 64), np.float32))
PREDICT = "/v1/models/digits:predict"
IRIS = {"features": [5.1, 3.5, 1.4, 0.2], "garden": "kew"}


def _with_input(**changes) -> dict:
    """GOOD with the first input's fields changed."""
    return {"inputs": [{**GOOD["inputs"][0], **changes}]}


def _nan_row(token: bytes) -> bytes:
    return b'{"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [' + \
        b", ".join([b"1"] * 63 + [token]) + b"]}]}"


BAD_REQUESTS = [  # (id, path, body bytes, status, words the error must contain)
    ("malformed-json", DIGITS, b'{"inputs": [', 400, ["malformed JSON"]),
    ("empty-body", DIGITS, b"", 400, ["empty"]),
    ("not-an-object", DIGITS, b"[1, 2]", 400, ["inputs"]),
    ("nan-token", DIGITS, _nan_row(b"NaN"), 400, ["non-finite"]),
    ("infinity-token", DIGITS, _nan_row(b"-Infinity"), 400, ["non-finite"]),
    ("count-mismatch", DIGITS, _with_input(data=list(range(7))), 400, ["7", "128"]),
    ("shape-mismatch", DIGITS, _with_input(shape=[2, 5], data=list(range(10))), 400,
     ["[-1, 64]", "[2, 5]"]),
    ("rank-mismatch", DIGITS, _with_input(shape=[128]), 400, ["[-1, 64]"]),
    ("negative-shape", DIGITS, _with_input(shape=[-1, 64]), 400, ["shape"]),
    ("ragged-data", DIGITS, _with_input(data=[[1] * 64, [1] * 63]), 400, ["rectangular"]),
    ("unknown-input", DIGITS, _with_input(name="image"), 400, ["image", "pixels"]),
    ("no-inputs", DIGITS, {"inputs": []}, 400, ["pixels"]),
    ("missing-input", "/v2/models/iris/infer", {"inputs": [
        {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, 400,
     ["garden (BYTES [-1])"]),
    ("category-not-a-string", "/v2/models/iris/infer", {"inputs": [
        {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "garden", "shape": [1], "datatype": "BYTES", "data": [7]}]}, 400,
     ["element 0", "strings"]),
    ("category-as-fp32", "/v2/models/iris/infer", {"inputs": [
        {"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "garden", "shape": [1], "datatype": "FP32", "data": [7]}]}, 400,
     ["FP32", "BYTES"]),
    ("duplicate-input", DIGITS, {"inputs": GOOD["inputs"] * 2}, 400, ["twice"]),
    ("no-data", DIGITS, {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32"}]},
     400, ["data"]),
    ("bytes-for-float", DIGITS, _with_input(datatype="BYTES", data=["a"] * 128), 400,
     ["BYTES", "FP32"]),
    ("bool-for-float", DIGITS, _with_input(datatype="BOOL", data=[True] * 128), 400,
     ["BOOL", "FP32"]),
    ("unknown-datatype", DIGITS, _with_input(datatype="FLOAT32"), 400, ["FLOAT32", "FP32"]),
    ("floats-as-int64", DIGITS, _with_input(datatype="INT64", data=[0.5] * 128), 400, ["INT64"]),
    ("int-not-exact-in-fp32", DIGITS, _with_input(datatype="INT64", data=[2**24 + 1] * 128),
     400, ["exact"]),
    ("fp32-overflow", DIGITS, _with_input(datatype="FP64", data=[1e39] * 128), 400, ["range"]),
    ("strings-as-fp32", DIGITS, _with_input(data=["x"] * 128), 400, ["strings"]),
    ("null-in-data", DIGITS, _with_input(data=[None] * 128), 400, ["FP32"]),
    ("unknown-output", DIGITS, {**GOOD, "outputs": [{"name": "logits"}]}, 400,
     ["logits", "probabilities"]),
    ("id-not-string", DIGITS, {**GOOD, "id": 5}, 400, ["id"]),
    ("unknown-model", "/v2/models/nope/infer", GOOD, 404, ["nope", "digits"]),
    ("unknown-version", "/v2/models/digits/versions/9/infer", GOOD, 404, ["9"]),
    ("classification-extension", DIGITS, {**GOOD, "outputs": [
        {"name": "label", "parameters": {"classification": 2}}]}, 400, ["classification"]),
    ("tf-both-forms", PREDICT, {"instances": [[1] * 64], "inputs": [[1] * 64]}, 400,
     ["not both"]),
    ("tf-neither-form", PREDICT, {"rows": []}, 400, ["instances"]),
    ("tf-row-width", PREDICT, {"instances": [[1, 2, 3], [4, 5, 6]]}, 400, ["128", "6"]),
    ("tf-nan", PREDICT, b'{"instances": [[' + b", ".join([b"1"] * 63 + [b"NaN"]) + b"]]}", 400,
     ["non-finite"]),
    ("tf-strings", PREDICT, {"instances": [["a"] * 64]}, 400, ["strings"]),
    ("tf-empty", PREDICT, {"instances": []}, 400, ["non-empty"]),
    ("tf-unknown-column", PREDICT, {"inputs": {"image": [[1] * 64]}}, 400, ["image"]),
    ("tf-missing-key", "/v1/models/iris:predict", {"instances": [{"features": [1, 2, 3, 4]}]},
     400, ["garden"]),
    ("tf-plain-rows-too-short", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4]]},
     400, ["4 values", "column order", "sepal_length", "garden"]),
    ("tf-unknown-key", "/v1/models/iris:predict", {"instances": [{**IRIS, "colour": "red"}]},
     400, ["colour"]),
    ("tf-unknown-model", "/v1/models/nope:predict", {"instances": [[1] * 64]}, 404, ["nope"]),
    ("tf-unknown-verb", "/v1/models/digits:classify", {"instances": [[1] * 64]}, 404,
     [":predict"]),
    ("tf-no-verb", "/v1/models/digits", {"instances": [[1] * 64]}, 404, [":predict"]),
    # fragile = digits with a lookup table of pixel values 0..16 in front: 40 is off the table.
    ("runtime-refuses-input", "/v2/models/fragile/infer", {"inputs": [
        {"name": "pixels", "shape": [2, 64], "datatype": "FP32", "data": [40] * 128}]}, 400,
     ["refused"]),
]


@pytest.mark.parametrize("path,body,status,words", [b[1:] for b in BAD_REQUESTS],
                         ids=[b[0] for b in BAD_REQUESTS])
def test_client_mistakes_get_4xx_json_error(client: httpx.Client, path: str, body: bytes | dict,
                                            status: int, words: list[str]) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = client.post(path, content=content)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    for word in words:
        assert word in error, f"{word!r} not in {error!r}"
    assert client.get("/v2/health/live").status_code == 200


@pytest.mark.parametrize("length,words", [("10", "malformed JSON"), ("99999", "only"),
                                          ("ten", "Inference-Header-Content-Length")])
def test_wrong_binary_header_is_400(client: httpx.Client, length: str, words: str) -> None:
    resp = client.post(DIGITS, content=json.dumps(GOOD).encode(),
                       headers={"Inference-Header-Content-Length": length})
    assert resp.status_code == 400 and words in resp.json()["error"]


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/nope", 404), ("GET", "/v2/models", 404), ("POST", "/v2/health/live", 405),
    ("GET", DIGITS, 405), ("GET", "/v1/models/digits:predict", 405),
    ("DELETE", "/v2/models/digits", 405)])
def test_route_misses_are_json_errors(client: httpx.Client, method: str, path: str,
                                      status: int) -> None:
    resp = client.request(method, path)
    assert resp.status_code == status and "error" in resp.json()


def test_model_failure_is_500_and_server_survives(client: httpx.Client, rows) -> None:
    # fragile's Reshape through [2, 64] fails inside ORT for a batch of 1: the model's fault.
    x, _, labels = rows
    resp = client.post("/v2/models/fragile/infer", json=digits_body(x[:1]))
    assert resp.status_code == 500 and "fragile" in resp.json()["error"]
    assert client.get("/v2/health/live").json() == {"live": True}
    # a batch of 2 passes the Reshape, and the rest of the graph is digits'
    out = outputs_by_name(client.post("/v2/models/fragile/infer", json=digits_body(x[:2])))
    assert out["label"]["data"] == labels[:2].tolist()
