"""The binary tensor data extension and datatypes, checked with tritonclient.http itself."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from danlu.serve.protocols.binary import bf16_bytes, decode_tensor, encode_tensor

from .conftest import _model, running_server, toy_meta, write_package
from .test_server import ROWS, oracle

httpclient = pytest.importorskip("tritonclient.http")


def echo_model() -> onnx.ModelProto:
    """text BYTES [N] -> Identity -> same BYTES [N] (strings through ONNX Runtime)."""
    return _model([helper.make_node("Identity", ["text"], ["echo"])],
                  [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
                  [helper.make_tensor_value_info("echo", TensorProto.STRING, ["N"])], [])


@pytest.fixture(scope="module")
def triton(packages: dict, tmp_path_factory: pytest.TempPathFactory):
    """tritonclient.http against a server holding toy, pair and an echo (BYTES) model."""
    meta = toy_meta(name="echo", task="regression", labels=None,
                    inputs=[{"name": "text", "datatype": "BYTES", "shape": [-1]}],
                    outputs=[{"name": "echo", "datatype": "BYTES", "shape": [-1]}])
    echo = write_package(tmp_path_factory.mktemp("echo"), echo_model(), meta)
    with running_server([packages["toy"], packages["pair"], echo]) as (url, _):
        client = httpclient.InferenceServerClient(url.removeprefix("http://"))
        yield client, url
        client.close()


def test_tritonclient_defaults_binary_in_and_out(triton, packages: dict) -> None:
    client, _ = triton
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("toy")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    inp = httpclient.InferInput("pixels", list(ROWS.shape), "FP32")
    inp.set_data_from_numpy(ROWS)  # binary_data=True is tritonclient's default
    result = client.infer("toy", [inp], request_id="abc")  # no outputs: all, in binary
    probs, labels = oracle(packages["toy"], ROWS)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    body = result.get_response()
    assert body["id"] == "abc"
    assert all(o["parameters"]["binary_data_size"] > 0 for o in body["outputs"])


@pytest.mark.parametrize("binary_in,binary_out", [(False, False), (True, False), (False, True)])
def test_tritonclient_json_and_mixed_modes(triton, packages: dict, binary_in: bool,
                                           binary_out: bool) -> None:
    client, _ = triton
    inp = httpclient.InferInput("pixels", list(ROWS.shape), "FP32")
    inp.set_data_from_numpy(ROWS, binary_data=binary_in)
    out = httpclient.InferRequestedOutput("label", binary_data=binary_out)
    result = client.infer("toy", [inp], outputs=[out], model_version="1")
    _, labels = oracle(packages["toy"], ROWS)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]


@pytest.mark.parametrize("datatype,dtype", [
    ("FP16", np.float16), ("FP64", np.float64), ("INT8", np.int8), ("INT16", np.int16),
    ("INT32", np.int32), ("INT64", np.int64), ("UINT8", np.uint8), ("UINT16", np.uint16),
    ("UINT32", np.uint32), ("UINT64", np.uint64)])
@pytest.mark.parametrize("binary", [True, False])
def test_numeric_datatypes_convert_to_the_model_input(triton, packages: dict, datatype: str,
                                                      dtype: type, binary: bool) -> None:
    client, _ = triton
    values = np.arange(12).reshape(3, 4).astype(dtype)  # exact in every type and in FP32
    inp = httpclient.InferInput("pixels", [3, 4], datatype)
    inp.set_data_from_numpy(values, binary_data=binary)
    result = client.infer("toy", [inp], outputs=[httpclient.InferRequestedOutput("label")])
    _, labels = oracle(packages["toy"], values.astype(np.float32))
    np.testing.assert_array_equal(result.as_numpy("label"), labels)


def test_bf16_binary_input_widens_exactly(triton, packages: dict) -> None:
    client, _ = triton
    values = np.array([[1.5, -2.0, 0.25, 3.0], [8.0, 0.5, -1.0, 2.0]], np.float32)
    inp = httpclient.InferInput("pixels", [2, 4], "BF16")
    ml_dtypes = pytest.importorskip("ml_dtypes")  # tritonclient's own bf16 type
    inp.set_data_from_numpy(values.astype(ml_dtypes.bfloat16))
    result = client.infer("toy", [inp])
    probs, _ = oracle(packages["toy"], values)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-6)


def test_bytes_tensors_binary_and_json(triton) -> None:
    client, _ = triton
    words = np.array(["héllo", "", "danlu"], dtype=object)
    for binary in (True, False):
        inp = httpclient.InferInput("text", [3], "BYTES")
        inp.set_data_from_numpy(words, binary_data=binary)
        out = httpclient.InferRequestedOutput("echo", binary_data=binary)
        got = client.infer("echo", [inp], outputs=[out]).as_numpy("echo")
        assert [g.decode() if isinstance(g, bytes) else g for g in got] == list(words)


def test_two_binary_inputs_in_order(triton) -> None:
    client, _ = triton
    a, b = np.ones((2, 2), np.float32), np.full((2, 2), 3.0, np.float32)
    inputs = [httpclient.InferInput("b", [2, 2], "FP32"), httpclient.InferInput("a", [2, 2], "FP32")]
    inputs[0].set_data_from_numpy(b)
    inputs[1].set_data_from_numpy(a)
    assert client.infer("pair", inputs).as_numpy("sum").tolist() == [[4.0, 4.0], [4.0, 4.0]]


def test_tritonclient_gets_the_servers_error_message(triton) -> None:
    client, _ = triton
    inp = httpclient.InferInput("pixels", [1, 5], "FP32")
    inp.set_data_from_numpy(np.ones((1, 5), np.float32))
    with pytest.raises(Exception, match=r"\[-1, 4\]") as info:
        client.infer("toy", [inp])
    assert info.value.status() == "400"


@pytest.mark.parametrize("body,words", [
    ({"binary_data_size": 15}, "needs 16"),   # one byte short for 2x2 FP32
    ({"binary_data_size": 17}, "past the end"),
    ({"binary_data_size": -1}, "expected bytes")])
def test_bad_binary_requests_are_400(triton, body: dict, words: str) -> None:
    _, url = triton
    head = ('{"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32", '
            f'"parameters": {{"binary_data_size": {body["binary_data_size"]}}}}}]}}').encode()
    raw = head + np.ones(4, np.float32).tobytes()
    resp = httpx.post(f"{url}/v2/models/toy/infer", content=raw,
                      headers={"Inference-Header-Content-Length": str(len(head))})
    assert resp.status_code == 400 and words in resp.json()["error"], resp.text


def test_leftover_binary_bytes_are_400(triton) -> None:
    _, url = triton
    head = (b'{"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32", '
            b'"parameters": {"binary_data_size": 16}}]}')
    resp = httpx.post(f"{url}/v2/models/toy/infer", content=head + b"\0" * 20,
                      headers={"Inference-Header-Content-Length": str(len(head))})
    assert resp.status_code == 400 and "add up to 16" in resp.json()["error"]


def test_binary_nan_is_refused_like_json(triton) -> None:
    _, url = triton
    head = (b'{"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32", '
            b'"parameters": {"binary_data_size": 16}}]}')
    data = np.array([1, np.nan, 2, 3], np.float32).tobytes()
    resp = httpx.post(f"{url}/v2/models/toy/infer", content=head + data,
                      headers={"Inference-Header-Content-Length": str(len(head))})
    assert resp.status_code == 400 and "non-finite" in resp.json()["error"]


def test_codec_round_trips() -> None:
    arr = np.array([[1.0, -2.5], [3.25, 0.0]], np.float32)
    back = decode_tensor(memoryview(encode_tensor(arr)), "FP32", [2, 2], "x")
    np.testing.assert_array_equal(back.reshape(2, 2), arr)
    words = np.array(["a", "bc"], dtype=object)
    assert encode_tensor(words) == struct.pack("<I", 1) + b"a" + struct.pack("<I", 2) + b"bc"
    assert decode_tensor(memoryview(encode_tensor(words)), "BYTES", [2], "x").tolist() == ["a", "bc"]
    bf = decode_tensor(memoryview(bf16_bytes(arr)), "BF16", [2, 2], "x")
    np.testing.assert_array_equal(bf.reshape(2, 2), arr)  # these values are exact in bf16


def test_nonfinite_allowed_when_the_package_says_so(package_factory) -> None:
    pkg: Path = package_factory("lenient", allow_nonfinite=True)
    with running_server([pkg]) as (url, _):
        resp = httpx.post(f"{url}/v2/models/toy/infer", content=(
            b'{"inputs": [{"name": "pixels", "shape": [1, 4], "datatype": "FP32", '
            b'"data": [1, 2, 3, 4]}]}'))
        assert resp.status_code == 200
        nan = httpx.post(f"{url}/v1/models/toy:predict", content=b'{"instances": [[1, NaN, 3, 4]]}')
        assert nan.status_code != 400  # passed validation; the model's NaN output is its own
