"""The HTTP server, end to end: a real uvicorn process, real ONNX models, httpx as the client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from .conftest import LABELS

ROWS = np.random.default_rng(0).normal(2.5, 3.0, size=(16, 4)).astype(np.float32)


def oracle(package: Path, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, label) from plain onnxruntime on the package's model.onnx."""
    sess = ort.InferenceSession(str(package / "model.onnx"), providers=["CPUExecutionProvider"])
    probs, labels = sess.run(["probabilities", "label"], {"pixels": rows})
    return probs, labels


def kserve_body(rows: np.ndarray | list, **extra) -> dict:
    """An infer request for the toy model with flat FP32 data."""
    arr = np.asarray(rows)
    return {"inputs": [{"name": "pixels", "shape": list(arr.shape), "datatype": "FP32",
                        "data": arr.ravel().tolist()}], **extra}


def outputs_by_name(resp: httpx.Response) -> dict[str, dict]:
    """The response's outputs keyed by name."""
    assert resp.status_code == 200, resp.text
    return {o["name"]: o for o in resp.json()["outputs"]}


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


@pytest.mark.parametrize("path", ["/v2/models/toy", "/v2/models/toy/versions/1"])
def test_model_metadata_declares_the_contract(client: httpx.Client, path: str) -> None:
    assert client.get(path).json() == {
        "name": "toy", "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}]}


@pytest.mark.parametrize("path", ["/v2/models/toy/ready", "/v2/models/toy/versions/1/ready"])
def test_model_ready(client: httpx.Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200 and resp.json() == {"name": "toy", "ready": True}


@pytest.mark.parametrize("path", ["/v2/models/toy/versions/2", "/v2/models/toy/versions/2/ready",
                                  "/v2/models/nope", "/v2/models/nope/ready"])
def test_unknown_model_or_version_is_404(client: httpx.Client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404 and "error" in resp.json()


@pytest.mark.parametrize("path", ["/v2/models/toy/infer", "/v2/models/toy/versions/1/infer"])
def test_infer_labels_match_onnxruntime(client: httpx.Client, packages: dict, path: str) -> None:
    probs, labels = oracle(packages["toy"], ROWS)
    out = outputs_by_name(client.post(path, json=kserve_body(ROWS)))
    assert out["label"] == {"name": "label", "datatype": "INT64", "shape": [16],
                            "data": labels.tolist()}
    assert out["probabilities"]["shape"] == [16, 3]
    assert out["probabilities"]["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (16, 3)), probs, rtol=1e-6)
    assert len(set(labels.tolist())) > 1  # the oracle check means something only if labels vary


def test_infer_accepts_nested_data(client: httpx.Client) -> None:
    flat = outputs_by_name(client.post("/v2/models/toy/infer", json=kserve_body(ROWS)))
    body = kserve_body(ROWS)
    body["inputs"][0]["data"] = ROWS.tolist()
    assert outputs_by_name(client.post("/v2/models/toy/infer", json=body)) == flat


def test_infer_converts_int64_pixels(client: httpx.Client, packages: dict) -> None:
    ints = np.arange(12, dtype=np.int64).reshape(3, 4)
    _, labels = oracle(packages["toy"], ints.astype(np.float32))
    body = {"inputs": [{"name": "pixels", "shape": [3, 4], "datatype": "INT64",
                        "data": ints.ravel().tolist()}]}
    assert outputs_by_name(client.post("/v2/models/toy/infer", json=body))["label"]["data"] == \
        labels.tolist()


def test_infer_honours_requested_outputs_and_echoes_id(client: httpx.Client) -> None:
    resp = client.post("/v2/models/toy/infer",
                       json=kserve_body(ROWS[:2], id="req-42", outputs=[{"name": "label"}]))
    body = resp.json()
    assert body["id"] == "req-42" and body["model_name"] == "toy" and body["model_version"] == "1"
    assert [o["name"] for o in body["outputs"]] == ["label"]


def test_infer_without_content_type_header(client: httpx.Client, packages: dict) -> None:
    # tritonclient sends the JSON body with no Content-Type: the server must not care.
    request = client.build_request("POST", "/v2/models/toy/infer",
                                   content=json.dumps(kserve_body(ROWS)).encode())
    assert "content-type" not in request.headers
    _, labels = oracle(packages["toy"], ROWS)
    assert outputs_by_name(client.send(request))["label"]["data"] == labels.tolist()


def test_multi_input_model(client: httpx.Client) -> None:
    a, b = [[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]
    body = {"inputs": [{"name": "b", "shape": [2, 2], "datatype": "FP32", "data": b},
                       {"name": "a", "shape": [2, 2], "datatype": "FP32", "data": a}]}
    out = outputs_by_name(client.post("/v2/models/pair/versions/7/infer", json=body))
    assert out["sum"]["data"] == [11.0, 22.0, 33.0, 44.0] and out["sum"]["shape"] == [2, 2]
    rows = client.post("/v1/models/pair:predict", json={"instances": [{"a": a[0], "b": b[0]}]})
    assert rows.json() == {"predictions": [[11.0, 22.0]]}


def test_concurrent_requests_all_answer(client: httpx.Client, packages: dict) -> None:
    _, labels = oracle(packages["toy"], ROWS)

    def one(i: int) -> list[int]:
        resp = client.post("/v2/models/toy/infer", json=kserve_body(ROWS[i:i + 1]))
        return outputs_by_name(resp)["label"]["data"]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(len(ROWS))))
    assert got == [[int(x)] for x in labels]


# --- TF-Serving-style /v1 -------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/models/toy:predict", "/v1/models/toy/versions/1:predict"])
def test_predict_rows_give_label_names(client: httpx.Client, packages: dict, path: str) -> None:
    probs, labels = oracle(packages["toy"], ROWS)
    resp = client.post(path, json={"instances": ROWS.tolist()})
    assert resp.status_code == 200, resp.text
    preds = resp.json()["predictions"]
    assert [p["label"] for p in preds] == [LABELS[i] for i in labels]
    assert [p["label_index"] for p in preds] == labels.tolist()
    for p, row in zip(preds, probs, strict=True):
        assert list(p["probabilities"]) == LABELS
        np.testing.assert_allclose(list(p["probabilities"].values()), row, rtol=1e-6)


def test_predict_rows_may_be_nested_per_row(client: httpx.Client, packages: dict) -> None:
    _, labels = oracle(packages["toy"], ROWS[:2])
    nested = [[[r[0], r[1]], [r[2], r[3]]] for r in ROWS[:2].tolist()]  # 2x2 per row, 4 values
    resp = client.post("/v1/models/toy:predict", json={"instances": nested})
    assert [p["label_index"] for p in resp.json()["predictions"]] == labels.tolist()


def test_predict_column_form(client: httpx.Client, packages: dict) -> None:
    probs, labels = oracle(packages["toy"], ROWS[:3])
    for inputs in ({"pixels": ROWS[:3].tolist()}, ROWS[:3].tolist()):
        resp = client.post("/v1/models/toy:predict", json={"inputs": inputs})
        assert resp.status_code == 200, resp.text
        out = resp.json()["outputs"]
        assert out["label"] == labels.tolist()
        np.testing.assert_allclose(out["probabilities"], probs, rtol=1e-6)


def test_tf_model_status(client: httpx.Client) -> None:
    for path in ("/v1/models/toy", "/v1/models/toy/versions/1"):
        status = client.get(path).json()["model_version_status"][0]
        assert status["version"] == "1" and status["state"] == "AVAILABLE"
    assert client.get("/v1/models/toy/versions/3").status_code == 404


# --- every client mistake: the right 4xx, {"error"}, and the server keeps answering ----------

GOOD = kserve_body(ROWS[:2])
INFER = "/v2/models/toy/infer"
PREDICT = "/v1/models/toy:predict"


def _with_input(**changes) -> dict:
    """GOOD with the first input's fields changed."""
    return {"inputs": [{**GOOD["inputs"][0], **changes}]}


BAD_REQUESTS = [  # (id, path, body bytes, status, words the error must contain)
    ("malformed-json", INFER, b'{"inputs": [', 400, ["malformed JSON"]),
    ("empty-body", INFER, b"", 400, ["empty"]),
    ("not-an-object", INFER, b"[1, 2]", 400, ["inputs"]),
    ("nan-token", INFER, (b'{"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": '
                          b'"FP32", "data": [1, NaN, 3, 4]}]}'), 400, ["non-finite"]),
    ("infinity-token", INFER, (b'{"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": '
                               b'"FP32", "data": [1, 2, -Infinity, 4]}]}'), 400, ["non-finite"]),
    ("count-mismatch", INFER, _with_input(data=list(range(7))), 400, ["7", "8"]),
    ("shape-mismatch", INFER, _with_input(shape=[2, 5], data=list(range(10))), 400,
     ["[-1, 4]", "[2, 5]"]),
    ("rank-mismatch", INFER, _with_input(shape=[8]), 400, ["[-1, 4]"]),
    ("negative-shape", INFER, _with_input(shape=[-1, 4]), 400, ["shape"]),
    ("ragged-data", INFER, _with_input(data=[[1, 2, 3, 4], [5, 6, 7]]), 400, ["rectangular"]),
    ("unknown-input", INFER, _with_input(name="image"), 400, ["image", "pixels"]),
    ("no-inputs", INFER, {"inputs": []}, 400, ["pixels"]),
    ("missing-input", "/v2/models/pair/infer", {"inputs": [
        {"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}, 400,
     ["b (FP32 [-1, 2])"]),
    ("duplicate-input", INFER, {"inputs": GOOD["inputs"] * 2}, 400, ["twice"]),
    ("no-data", INFER, {"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32"}]},
     400, ["data"]),
    ("bytes-for-float", INFER, _with_input(datatype="BYTES", data=["a"] * 8), 400,
     ["BYTES", "FP32"]),
    ("bool-for-float", INFER, _with_input(datatype="BOOL", data=[True] * 8), 400,
     ["BOOL", "FP32"]),
    ("unknown-datatype", INFER, _with_input(datatype="FLOAT32"), 400, ["FLOAT32", "FP32"]),
    ("floats-as-int64", INFER, _with_input(datatype="INT64", data=[0.5] * 8), 400, ["INT64"]),
    ("int-not-exact-in-fp32", INFER, _with_input(datatype="INT64", data=[2**24 + 1] * 8), 400,
     ["exact"]),
    ("fp32-overflow", INFER, _with_input(datatype="FP64", data=[1e39] * 8), 400, ["range"]),
    ("strings-as-fp32", INFER, _with_input(data=["x"] * 8), 400, ["strings"]),
    ("null-in-data", INFER, _with_input(data=[None] * 8), 400, ["FP32"]),
    ("unknown-output", INFER, {**GOOD, "outputs": [{"name": "logits"}]}, 400,
     ["logits", "probabilities"]),
    ("id-not-string", INFER, {**GOOD, "id": 5}, 400, ["id"]),
    ("unknown-model", "/v2/models/nope/infer", GOOD, 404, ["nope", "toy"]),
    ("unknown-version", "/v2/models/toy/versions/9/infer", GOOD, 404, ["9"]),
    ("classification-extension", INFER, {**GOOD, "outputs": [
        {"name": "label", "parameters": {"classification": 2}}]}, 400, ["classification"]),
    ("tf-both-forms", PREDICT, {"instances": ROWS[:1].tolist(), "inputs": ROWS[:1].tolist()},
     400, ["not both"]),
    ("tf-neither-form", PREDICT, {"rows": []}, 400, ["instances"]),
    ("tf-row-width", PREDICT, {"instances": [[1, 2, 3], [4, 5, 6]]}, 400, ["8", "6"]),
    ("tf-nan", PREDICT, b'{"instances": [[1, 2, 3, NaN]]}', 400, ["non-finite"]),
    ("tf-strings", PREDICT, {"instances": [["a", "b", "c", "d"]]}, 400, ["strings"]),
    ("tf-empty", PREDICT, {"instances": []}, 400, ["non-empty"]),
    ("tf-unknown-column", PREDICT, {"inputs": {"image": ROWS[:1].tolist()}}, 400, ["image"]),
    ("tf-missing-key", "/v1/models/pair:predict", {"instances": [{"a": [1, 2]}]}, 400, ["b"]),
    ("tf-unknown-model", "/v1/models/nope:predict", {"instances": [[1, 2, 3, 4]]}, 404,
     ["nope"]),
    ("tf-unknown-verb", "/v1/models/toy:classify", {"instances": [[1, 2, 3, 4]]}, 404,
     [":predict"]),
    ("tf-no-verb", "/v1/models/toy", {"instances": [[1, 2, 3, 4]]}, 404, [":predict"]),
    ("runtime-refuses-input", "/v2/models/fragile/infer", {"inputs": [
        {"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [1, 7]}]}, 400, ["refused"]),
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
    resp = client.post(INFER, content=json.dumps(GOOD).encode(),
                       headers={"Inference-Header-Content-Length": length})
    assert resp.status_code == 400 and words in resp.json()["error"]


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/nope", 404), ("GET", "/v2/models", 404), ("POST", "/v2/health/live", 405),
    ("GET", "/v2/models/toy/infer", 405), ("GET", "/v1/models/toy:predict", 405),
    ("DELETE", "/v2/models/toy", 405)])
def test_route_misses_are_json_errors(client: httpx.Client, method: str, path: str,
                                      status: int) -> None:
    resp = client.request(method, path)
    assert resp.status_code == status and "error" in resp.json()


def test_model_failure_is_500_and_server_survives(client: httpx.Client) -> None:
    # fragile's Reshape to [2] fails inside ORT for a batch of 1: the model's fault, not ours.
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}
    resp = client.post("/v2/models/fragile/infer", json=body)
    assert resp.status_code == 500 and "fragile" in resp.json()["error"]
    assert client.get("/v2/health/live").json() == {"live": True}
    body["inputs"][0].update(shape=[2, 1], data=[0.0, 2.0])
    assert outputs_by_name(client.post("/v2/models/fragile/infer", json=body))["y"]["data"] == \
        [10.0, 30.0]
