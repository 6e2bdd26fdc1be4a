"""The protocol decoders as plain functions on the digits package danlu wrote: JSON in, numpy
out, ProtocolError for mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from danlu.serve import load_package
from danlu.serve.protocols import InferRequest, ProtocolError, kserve_v2, parse_json, tfserving_v1
from danlu.serve.protocols.base import convert

from .conftest import DELETE, copy_package


@pytest.fixture(scope="module")
def digits(digits_package: Path):
    return load_package(digits_package)


def _kserve(data, shape=(2, 64), datatype="FP32", **extra) -> dict:
    return {"inputs": [{"name": "pixels", "shape": list(shape), "datatype": datatype,
                        "data": data}], **extra}


def test_parse_json_reads_bare_nan_tokens() -> None:
    body = parse_json(b'{"data": [NaN, Infinity, -Infinity]}')
    assert np.isnan(body["data"][0]) and body["data"][1:] == [float("inf"), float("-inf")]


@pytest.mark.parametrize("raw", [b"", b"  ", b"{", b"\xff\xfe\x00", b"[" * 100_000])
def test_parse_json_refuses_garbage_with_400(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_json(raw)
    assert info.value.status == 400


def test_flat_and_nested_data_decode_alike(digits) -> None:
    flat = kserve_v2.decode_request(_kserve(list(range(128))), digits)
    nested = kserve_v2.decode_request(_kserve([list(range(64)), list(range(64, 128))]), digits)
    np.testing.assert_array_equal(flat.inputs["pixels"], nested.inputs["pixels"])
    assert flat.inputs["pixels"].dtype == np.float32 and flat.inputs["pixels"].shape == (2, 64)


def test_requested_outputs_are_deduplicated_in_order(digits) -> None:
    req = kserve_v2.decode_request(_kserve(list(range(128)), id="x", outputs=[
        {"name": "label"}, {"name": "probabilities"}, {"name": "label"}]), digits)
    assert req.outputs == ["label", "probabilities"] and req.id == "x"


def test_count_error_names_both_numbers(digits) -> None:
    with pytest.raises(ProtocolError, match="data has 5 elements but shape \\[2, 64\\] needs 128"):
        kserve_v2.decode_request(_kserve(list(range(5))), digits)


def test_response_tensors_are_flat_row_major(digits) -> None:
    outputs = {"probabilities": np.arange(6, dtype=np.float32).reshape(2, 3),
               "label": np.array([2, 0], dtype=np.int64)}
    resp = kserve_v2.encode_response(InferRequest({}, id="r1"), outputs, digits)
    assert resp == {"model_name": "digits", "model_version": "1", "id": "r1", "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": [2, 3],
         "data": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]},
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [2, 0]}]}


@pytest.mark.parametrize("values,source,target,ok", [
    ([1, 2], "INT64", "FP32", True), ([1, 2], "UINT8", "FP32", True),
    ([0.5], "FP64", "FP16", True), ([1.5], "FP32", "INT64", False),
    ([300], "INT64", "UINT8", False), ([-1], "INT32", "UINT32", False),
    ([7], "INT8", "INT64", True), ([True], "BOOL", "BOOL", True),
    ([True], "BOOL", "FP32", False), (["a"], "BYTES", "FP32", False),
    (["a"], "BYTES", "BYTES", True), ([1], "INT64", "BOOL", False),
    ([70000.0], "FP32", "FP16", False), ([2**53 + 1], "INT64", "FP64", False),
])
def test_conversions_are_exact_or_standard(values, source, target, ok) -> None:
    arr = np.asarray(values)
    if ok:
        assert convert(arr, target, "x").size == len(values)
    else:
        with pytest.raises(ProtocolError):
            convert(arr, target, "x", source=source)


def test_tf_rows_and_columns_decode_alike(digits) -> None:
    rows = [list(range(64)), list(range(64, 128))]
    by_rows = tfserving_v1.decode_request({"instances": rows}, digits)
    by_cols = tfserving_v1.decode_request({"inputs": {"pixels": rows}}, digits)
    images = [np.reshape(r, (8, 8)).tolist() for r in rows]  # 8x8 per row
    flat_rows = tfserving_v1.decode_request({"instances": images}, digits)
    for req in (by_cols, flat_rows):
        np.testing.assert_array_equal(req.inputs["pixels"], by_rows.inputs["pixels"])
    assert (by_rows.form, by_cols.form) == ("instances", "inputs")


def test_tf_predictions_use_label_names(table_package: Path) -> None:
    iris = load_package(table_package)
    outputs = {"probabilities": np.array([[0.2, 0.7, 0.1]], np.float32),
               "label": np.array([1], np.int64)}
    preds = tfserving_v1.encode_response(InferRequest({}, form="instances"), outputs, iris)
    assert preds["predictions"][0]["label"] == "versicolor"
    assert preds["predictions"][0]["label_index"] == 1
    assert list(preds["predictions"][0]["probabilities"]) == ["setosa", "versicolor", "virginica"]


def test_tf_labels_default_to_class_indices(table_package: Path, tmp_path: Path) -> None:
    # The iris package, copied without `labels` in danlu-model.json (nor the head that knows them).
    pkg = load_package(copy_package(table_package, tmp_path / "iris", {"labels": DELETE,
                                                                     "head": DELETE}))
    outputs = {"probabilities": np.array([[0.2, 0.1, 0.7]], np.float32),
               "label": np.array([2], np.int64)}
    pred = tfserving_v1.encode_response(InferRequest({}, form="instances"), outputs, pkg)
    assert pred["predictions"][0]["label"] == "2"
    assert list(pred["predictions"][0]["probabilities"]) == ["0", "1", "2"]


def test_tf_both_forms_is_400(digits) -> None:
    with pytest.raises(ProtocolError) as info:
        tfserving_v1.decode_request({"instances": [[1] * 64], "inputs": [[1] * 64]}, digits)
    assert info.value.status == 400
