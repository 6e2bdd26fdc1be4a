"""The binary tensor data extension and datatypes, checked with tritonclient.http itself against
packages danlu wrote (digits, iris, the tiny text run); answers compared with evaluation's."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import numpy as np
import pytest

from danlu.serve.protocols.binary import bf16_bytes, decode_tensor, encode_tensor

from .conftest import Evaluation, copy_package, running_server

httpclient = pytest.importorskip("tritonclient.http")

ATOL = 1e-4  # float32 ONNX Runtime vs the float32 torch model evaluation ran


@pytest.fixture(scope="module")
def triton(digits_package: Path, table_package: Path, text_package: Path):
    """tritonclient.http against a server holding digits, iris and the text package."""
    with running_server([digits_package, table_package, text_package]) as (url, _):
        client = httpclient.InferenceServerClient(url.removeprefix("http://"))
        yield client, url
        client.close()


@pytest.fixture(scope="module")
def rows(digits_eval: Evaluation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12 test images (whole-number pixels 0..16: exact in every numeric type, bf16 too)."""
    pick = np.arange(12) * 11
    return digits_eval.values["pixels"][pick], digits_eval.probs[pick], digits_eval.labels[pick]


def test_tritonclient_defaults_binary_in_and_out(triton, rows) -> None:
    client, _ = triton
    x, probs, labels = rows
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    inp = httpclient.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)  # binary_data=True is tritonclient's default
    result = client.infer("digits", [inp], request_id="abc")  # no outputs: all, in binary
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, atol=ATOL)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    body = result.get_response()
    assert body["id"] == "abc"
    assert all(o["parameters"]["binary_data_size"] > 0 for o in body["outputs"])


@pytest.mark.parametrize("binary_in,binary_out", [(False, False), (True, False), (False, True)])
def test_tritonclient_json_and_mixed_modes(triton, rows, binary_in: bool,
                                           binary_out: bool) -> None:
    client, _ = triton
    x, _, labels = rows
    inp = httpclient.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary_in)
    out = httpclient.InferRequestedOutput("label", binary_data=binary_out)
    result = client.infer("digits", [inp], outputs=[out], model_version="1")
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]


@pytest.mark.parametrize("datatype,dtype", [
    ("FP16", np.float16), ("FP64", np.float64), ("INT8", np.int8), ("INT16", np.int16),
    ("INT32", np.int32), ("INT64", np.int64), ("UINT8", np.uint8), ("UINT16", np.uint16),
    ("UINT32", np.uint32), ("UINT64", np.uint64)])
@pytest.mark.parametrize("binary", [True, False])
def test_numeric_datatypes_convert_to_the_model_input(triton, rows, datatype: str, dtype: type,
                                                      binary: bool) -> None:
    client, _ = triton
    x, _, labels = rows
    inp = httpclient.InferInput("pixels", list(x.shape), datatype)
    inp.set_data_from_numpy(x.astype(dtype), binary_data=binary)
    result = client.infer("digits", [inp], outputs=[httpclient.InferRequestedOutput("label")])
    np.testing.assert_array_equal(result.as_numpy("label"), labels)


def test_bf16_binary_input_widens_exactly(triton, rows) -> None:
    client, _ = triton
    x, probs, _ = rows
    inp = httpclient.InferInput("pixels", list(x.shape), "BF16")
    ml_dtypes = pytest.importorskip("ml_dtypes")  # tritonclient's own bf16 type
    inp.set_data_from_numpy(x.astype(ml_dtypes.bfloat16))
    result = client.infer("digits", [inp])
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, atol=ATOL)


def _table_inputs(values: dict[str, np.ndarray], binary: bool) -> list:
    """iris's two inputs, the category first (inputs are matched by name, bytes in this order)."""
    garden = httpclient.InferInput("garden", [len(values["garden"])], "BYTES")
    garden.set_data_from_numpy(values["garden"].astype(object), binary_data=binary)
    numbers = httpclient.InferInput("features", list(values["features"].shape), "FP32")
    numbers.set_data_from_numpy(values["features"], binary_data=binary)
    return [garden, numbers]


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_and_numbers_together_binary_and_json(triton, table_eval: Evaluation,
                                                     binary: bool) -> None:
    client, _ = triton
    result = client.infer("iris", _table_inputs(table_eval.values, binary))
    np.testing.assert_array_equal(result.as_numpy("label"), table_eval.labels)
    np.testing.assert_allclose(result.as_numpy("probabilities"), table_eval.probs, atol=ATOL)


@pytest.mark.parametrize("binary", [True, False])
def test_one_input_per_column_answers_as_evaluated(triton, table_eval: Evaluation,
                                                   binary: bool) -> None:
    """The raw row as a Triton user sends a table: FP32 per number column, BYTES per category
    column ("" for a blank), in any order."""
    client, _ = triton
    x = table_eval.values["features"]
    columns = {"sepal_length": x[:, 0], "sepal_width": x[:, 1], "petal_length": x[:, 2],
               "petal_width": x[:, 3], "garden": table_eval.values["garden"].astype(object)}
    meta = client.get_model_metadata("iris")
    inputs = []
    for spec in reversed(meta["inputs"]):  # matched by name, not position
        values = columns[spec["name"]]
        inp = httpclient.InferInput(spec["name"], [len(x)], spec["datatype"])
        inp.set_data_from_numpy(np.ascontiguousarray(values), binary_data=binary)
        inputs.append(inp)
    result = client.infer("iris", inputs)
    np.testing.assert_array_equal(result.as_numpy("label"), table_eval.labels)
    np.testing.assert_allclose(result.as_numpy("probabilities"), table_eval.probs, atol=ATOL)


def test_texts_as_binary_bytes_answer_as_json_strings(triton, text_eval: Evaluation) -> None:
    client, _ = triton
    texts = text_eval.values["text"][:10]
    got = []
    for binary in (True, False):
        inp = httpclient.InferInput("text", [len(texts)], "BYTES")
        inp.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object),
                                binary_data=binary)
        got.append(client.infer("tiny-text", [inp]))
    np.testing.assert_array_equal(got[0].as_numpy("label"), got[1].as_numpy("label"))
    np.testing.assert_allclose(got[0].as_numpy("probabilities"), got[1].as_numpy("probabilities"),
                               atol=1e-6)
    assert got[0].as_numpy("probabilities").shape == (10, 5)


def test_tritonclient_gets_the_servers_error_message(triton) -> None:
    client, _ = triton
    inp = httpclient.InferInput("pixels", [1, 5], "FP32")
    inp.set_data_from_numpy(np.ones((1, 5), np.float32))
    with pytest.raises(Exception, match=r"\[-1, 64\]") as info:
        client.infer("digits", [inp])
    assert info.value.status() == "400"


def _head(size: int) -> bytes:
    return ('{"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", '
            f'"parameters": {{"binary_data_size": {size}}}}}]}}').encode()


@pytest.mark.parametrize("size,words", [
    (255, "needs 256"),   # one byte short for 1x64 FP32
    (257, "past the end"),
    (-1, "expected bytes")])
def test_bad_binary_requests_are_400(triton, size: int, words: str) -> None:
    _, url = triton
    head = _head(size)
    resp = httpx.post(f"{url}/v2/models/digits/infer", content=head + np.ones(64, np.float32).tobytes(),
                      headers={"Inference-Header-Content-Length": str(len(head))})
    assert resp.status_code == 400 and words in resp.json()["error"], resp.text


def test_leftover_binary_bytes_are_400(triton) -> None:
    _, url = triton
    head = _head(256)
    resp = httpx.post(f"{url}/v2/models/digits/infer", content=head + b"\0" * 276,
                      headers={"Inference-Header-Content-Length": str(len(head))})
    assert resp.status_code == 400 and "add up to 256" in resp.json()["error"]


def test_binary_nan_is_refused_like_json(triton) -> None:
    _, url = triton
    head = _head(256)
    data = np.ones(64, np.float32)
    data[5] = np.nan
    resp = httpx.post(f"{url}/v2/models/digits/infer", content=head + data.tobytes(),
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


def test_nonfinite_allowed_when_the_package_says_so(digits_package: Path, tmp_path: Path) -> None:
    # The digits package, copied with "allow_nonfinite": true in danlu-model.json.
    pkg = copy_package(digits_package, tmp_path / "lenient", {"allow_nonfinite": True})
    row = b", ".join([b"1"] * 63 + [b"NaN"])
    with running_server([pkg]) as (url, _):
        resp = httpx.post(f"{url}/v2/models/digits/infer", content=(
            b'{"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ['
            + b", ".join([b"1"] * 64) + b"]}]}"))
        assert resp.status_code == 200
        nan = httpx.post(f"{url}/v1/models/digits:predict",
                         content=b'{"instances": [[' + row + b"]]}")
        assert nan.status_code != 400  # passed validation; the model's NaN output is its own
